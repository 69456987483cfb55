"""Reading results back: one row per series x deployment (decision, job, prediction), CSV export, summary.

Rows carry UIDs, model identity, mode, score, flag, decision and reason, and the latency per stage; never
patient names, IDs or birth dates.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from radgate.engine.tables import Job, Prediction, RoutingDecisionRow

__all__ = ["EXPORT_COLUMNS", "EngineSummary", "export_csv", "iter_prediction_rows", "summarise"]

EXPORT_COLUMNS: tuple[str, ...] = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "deployment",
    "site",
    "model",
    "model_version",
    "mode",
    "decision",
    "reason",
    "job_status",
    "attempts",
    "score",
    "flag",
    "scores",
    "flags",
    "explanation_method",
    "explanation_path",
    "queue_wait_ms",
    "decode_ms",
    "preprocess_ms",
    "inference_ms",
    "postprocess_ms",
    "end_to_end_ms",
    "decided_at",
    "created_at",
    "used_instances",
    "policy",
    "policy_reason",
    "threshold",
    "threshold_source",
)


def iter_prediction_rows(session: Session, mode: str | None = None) -> Iterator[dict[str, Any]]:
    """One dict per routing decision (series x deployment), with its job and prediction when there are any.

    ``mode`` keeps only rows whose result (or, without a result, decision) has that mode.
    """
    query = (
        select(RoutingDecisionRow, Job, Prediction)
        .outerjoin(Job, Job.id == RoutingDecisionRow.job_id)
        .outerjoin(
            Prediction,
            and_(
                Prediction.SeriesInstanceUID == RoutingDecisionRow.SeriesInstanceUID,
                Prediction.deployment == RoutingDecisionRow.deployment,
            ),
        )
        .order_by(RoutingDecisionRow.decided_at, RoutingDecisionRow.id)
    )
    for decision, job, pred in session.execute(query):
        row_mode = pred.mode if pred is not None else decision.mode
        if mode is not None and row_mode != mode:
            continue
        reason = decision.reason
        if job is not None and job.status in ("failed", "cancelled") and job.last_error:
            reason = f"{reason}; job {job.status}: {job.last_error}"
        yield {
            "StudyInstanceUID": decision.StudyInstanceUID,
            "SeriesInstanceUID": decision.SeriesInstanceUID,
            "SOPInstanceUID": pred.SOPInstanceUID if pred else "",
            "deployment": decision.deployment,
            "site": pred.site if pred else "",
            "model": decision.model_name,
            "model_version": decision.model_version,
            "mode": row_mode,
            "decision": decision.decision,
            "reason": reason,
            "job_status": job.status if job else "",
            "attempts": job.attempts if job else "",
            "score": f"{pred.score:.6f}" if pred else "",
            "flag": ("1" if pred.flag else "0") if pred else "",
            "scores": pred.scores if pred else "",
            "flags": pred.flags if pred else "",
            "explanation_method": (pred.explanation_method or "") if pred else "",
            "explanation_path": (pred.explanation_path or "") if pred else "",
            "queue_wait_ms": _num(pred.queue_wait_ms if pred else None),
            "decode_ms": _num(pred.decode_ms if pred else None),
            "preprocess_ms": _num(pred.preprocess_ms if pred else None),
            "inference_ms": _num(pred.inference_ms if pred else None),
            "postprocess_ms": _num(pred.postprocess_ms if pred else None),
            "end_to_end_ms": _num(pred.end_to_end_ms if pred else None),
            "decided_at": decision.decided_at.isoformat(timespec="seconds"),
            "created_at": pred.created_at.isoformat(timespec="seconds") if pred else "",
            "used_instances": ";".join(json.loads(pred.used_instances or "[]")) if pred else "",
            "policy": pred.policy if pred else ("off" if decision.decision == "off" else ""),
            "policy_reason": pred.policy_reason if pred else "",
            "threshold": "" if pred is None or pred.threshold is None else f"{pred.threshold:g}",
            "threshold_source": (pred.threshold_source or "") if pred else "",
        }


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def export_csv(session: Session, out: TextIO | None = None, mode: str | None = None) -> str | int:
    """Write the rows as CSV to ``out`` and return the row count; without ``out``, return the CSV text."""
    buffer = out if out is not None else io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(EXPORT_COLUMNS), lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in iter_prediction_rows(session, mode):
        writer.writerow(row)
        count += 1
    if out is None:
        assert isinstance(buffer, io.StringIO)
        return buffer.getvalue()
    return count


@dataclass
class EngineSummary:
    """What the engine did, for ``make demo`` and the dashboard."""

    series: int = 0
    processed: int = 0
    flagged: int = 0
    silent: int = 0
    shadow: int = 0
    live: int = 0
    released: int = 0
    withheld: int = 0
    withheld_reasons: Counter[str] = field(default_factory=Counter)
    queued: int = 0
    running: int = 0
    failed: int = 0
    not_applicable: Counter[str] = field(default_factory=Counter)
    off: int = 0

    def lines(self) -> list[str]:
        out = [
            f"series routed: {self.series}",
            f"processed: {self.processed} ({self.silent} silent, {self.shadow} shadow, {self.live} live); "
            f"flagged: {self.flagged}",
            f"live results released: {self.released}; withheld (outside the validated subgroups): "
            f"{self.withheld}",
            f"queued: {self.queued}, running: {self.running}, failed: {self.failed}, "
            f"deployment off: {self.off}",
            f"not applicable: {sum(self.not_applicable.values())}",
        ]
        out += [f"  {n} x {reason}" for reason, n in self.not_applicable.most_common()]
        if self.withheld:
            out.append("withheld because:")
            out += [f"  {n} x {reason}" for reason, n in self.withheld_reasons.most_common()]
        return out


def summarise(session: Session) -> EngineSummary:
    """Counts over all routing decisions, jobs and predictions."""
    summary = EngineSummary()
    summary.series = len(set(session.scalars(select(RoutingDecisionRow.SeriesInstanceUID))))
    for decision, reason in session.execute(select(RoutingDecisionRow.decision, RoutingDecisionRow.reason)):
        if decision == "not_applicable":
            summary.not_applicable[reason] += 1
        elif decision == "off":
            summary.off += 1
    for status in session.scalars(select(Job.status)):
        if status in ("queued", "running", "failed"):
            setattr(summary, status, getattr(summary, status) + 1)
    rows = session.execute(
        select(Prediction.mode, Prediction.flag, Prediction.policy, Prediction.policy_reason)
    )
    for mode, flag, policy, policy_reason in rows:
        summary.processed += 1
        summary.flagged += int(bool(flag))
        if mode in ("live", "shadow", "silent"):
            setattr(summary, mode, getattr(summary, mode) + 1)
        if policy == "released":
            summary.released += 1
        elif policy == "withheld":
            summary.withheld += 1
            summary.withheld_reasons[policy_reason] += 1
    return summary
