"""The engine's built-in :class:`radgate.engine.ResultSink`: live prediction -> SR + GSPS in the outbox.

Called inside the transaction that stores the prediction, it reads the scored source image, rebuilds the VOI
window the model saw (:func:`radgate.imaging.to_display`), turns the explanation map into a region outline
when the finding is present, builds the objects with :func:`radgate.results.publish` and queues one outbox
row per destination - all committed with the prediction or not at all. Sending happens later, in the
outbox worker (:class:`OutboxWorker`), so no network I/O ever runs inside the engine's transaction.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from radgate.background import PeriodicService
from radgate.config import Settings
from radgate.db import Database, Instance
from radgate.engine.tables import Prediction
from radgate.imaging import to_display
from radgate.inference.explain import ExplanationMap
from radgate.models import get_model
from radgate.models.manifest import Manifest
from radgate.results.content import AIFinding, AIResult, Concept
from radgate.results.identity import ResultIdentity
from radgate.results.outbox import deliver_pending, results_store
from radgate.results.publish import publish
from radgate.results.send import Destination, destinations_from_settings, parse_destination
from radgate.routing.tables import DeploymentRow

__all__ = ["OUTBOX_QUEUED", "OutboxWorker", "PublishingSink", "region_from_map", "result_identity"]

log = logging.getLogger(__name__)

#: Set when new outbox rows have been committed in this process; the worker sends them at once.
OUTBOX_QUEUED = threading.Event()


def result_identity(prediction: Prediction) -> ResultIdentity:
    """One identity per (series, model version): re-publishing reuses its UIDs (no duplicates)."""
    return ResultIdentity(
        f"{prediction.SeriesInstanceUID}/{prediction.model_name}/{prediction.model_version}"
    )


def region_from_map(
    values: np.ndarray, rows: int, columns: int, level: float = 0.5
) -> tuple[tuple[float, float], ...] | None:
    """The bounding rectangle of the map's hottest region, in source-image pixel coordinates.

    The map covers the whole image at the model's input size; cells at or above ``level`` x its maximum form
    the region. A rectangle, not a contour: the map is a rough guide to where the model looked, and a box
    says no more than that. Returns ``None`` for an empty or flat map.
    """
    if values.size == 0 or not np.isfinite(values).all() or float(values.max()) <= 0:
        return None
    hot = values >= level * float(values.max())
    if hot.all():
        return None
    r_idx, c_idx = np.nonzero(hot)
    sy, sx = rows / values.shape[0], columns / values.shape[1]
    top, bottom = float(r_idx.min() * sy), float((r_idx.max() + 1) * sy)
    left, right = float(c_idx.min() * sx), float((c_idx.max() + 1) * sx)
    return ((left, top), (right, top), (right, bottom), (left, bottom))


class PublishingSink:
    """Publishes every live prediction as DICOM SR (TID 1500) + GSPS, optionally a heatmap SC."""

    def __init__(
        self, settings: Settings, destinations: Sequence[Destination], heatmap: bool = False
    ) -> None:
        self.settings = settings
        self.default_destinations = [d.name for d in destinations]
        self.heatmap = heatmap
        self.results_dir = results_store(settings.data_dir)

    def on_live_result(self, session: Session, prediction: Prediction) -> None:
        model = get_model(session, prediction.model_name, prediction.model_version)
        manifest = model.manifest
        instance = session.scalars(
            select(Instance)
            .where(Instance.SOPInstanceUID == prediction.SOPInstanceUID)
            .order_by(Instance.revision.desc())
        ).first()
        if instance is None:
            raise LookupError(
                f"Source image {prediction.SOPInstanceUID} of the prediction is not in the store."
            )
        ds = pydicom.dcmread(self.settings.store_dir / instance.path)
        display = to_display(ds)
        explanation = None
        if prediction.explanation_path:
            path = Path(self.settings.data_dir) / prediction.explanation_path
            if path.is_file():
                explanation = ExplanationMap.load(path).values
        findings = self._findings(manifest, prediction, int(ds.Rows), int(ds.Columns), explanation)
        result = AIResult(
            model_name=prediction.model_name,
            model_version=prediction.model_version,
            model_sha256=prediction.model_sha256,
            synthetic=manifest.model.synthetic_training_data,
            task=manifest.model.task,
            findings=tuple(findings),
            window_center=display.window_center,
            window_width=max(display.window_width, 1.0),
            voi_source=display.voi_source,
            explanations={prediction.SOPInstanceUID: explanation} if explanation is not None else {},
        )
        deployment = session.scalars(
            select(DeploymentRow).where(DeploymentRow.name == prediction.deployment)
        ).first()
        names = (
            json.loads(deployment.destinations) if deployment is not None and deployment.destinations else []
        )
        # Wake the outbox worker once this transaction has committed (not before: it would find nothing).
        event.listen(session, "after_commit", lambda _s: OUTBOX_QUEUED.set(), once=True)
        publish(
            session,
            result,
            [ds],
            result_identity(prediction),
            mode="live",
            destinations=names or self.default_destinations,
            results_dir=self.results_dir,
            heatmap=self.heatmap and explanation is not None,
            max_attempts=self.settings.results.outbox_max_attempts,
        )

    @staticmethod
    def _findings(
        manifest: Manifest, prediction: Prediction, rows: int, columns: int, explanation: np.ndarray | None
    ) -> list[AIFinding]:
        scores: dict[str, float] = json.loads(prediction.scores)
        findings = []
        for finding in manifest.findings:
            if finding.name not in scores:
                continue
            op = next(
                (o for o in manifest.operating_points if o.finding in (None, finding.name)),
                manifest.operating_points[0],
            )
            probability = float(scores[finding.name])
            present = probability >= op.threshold
            region = (
                region_from_map(explanation, rows, columns) if present and explanation is not None else None
            )
            findings.append(
                AIFinding(
                    name=finding.name,
                    finding_type=Concept(finding.code.value, finding.code.scheme, finding.code.meaning),
                    finding_site=(
                        Concept(finding.site.value, finding.site.scheme, finding.site.meaning)
                        if finding.site is not None
                        else None
                    ),
                    probability=min(max(probability, 0.0), 1.0),
                    threshold=float(op.threshold),
                    operating_point=op.name,
                    present=present,
                    SOPInstanceUID=prediction.SOPInstanceUID,
                    region=region,
                )
            )
        return findings


def all_destinations(settings: Settings, db: Database) -> list[Destination]:
    """The default destinations of ``[results]`` plus every destination a deployment names."""
    destinations = {d.name: d for d in destinations_from_settings(settings)}
    with db.session() as s:
        for row in s.scalars(select(DeploymentRow)).all():
            for spec in json.loads(row.destinations or "[]"):
                if spec not in destinations:
                    try:
                        dest = parse_destination(
                            spec,
                            calling_ae_title=settings.server.ae_title,
                            timeout_s=settings.server.network_timeout_s,
                        )
                    except ValueError as exc:
                        log.warning("Deployment %s: %s", row.name, exc)
                        continue
                    destinations[dest.name] = dest
    return list(destinations.values())


class OutboxWorker(PeriodicService):
    """Background service: sends due outbox rows; woken at once by new results, else every ``outbox_poll_s``
    for retries (the outbox itself does the backoff)."""

    thread_name = "radgate-outbox"

    def __init__(self, settings: Settings, db: Database, interval_s: float | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.db = db
        self.interval_s = settings.results.outbox_poll_s if interval_s is None else interval_s

    def run_once(self) -> int:
        report = deliver_pending(
            self.db,
            all_destinations(self.settings, self.db),
            datetime.now(),
            results_dir=results_store(self.settings.data_dir),
            backoff_s=self.settings.results.outbox_backoff_s,
        )
        return report.sent

    def tick(self) -> None:
        self.run_once()

    def wait(self) -> None:
        OUTBOX_QUEUED.wait(self.interval_s)
        OUTBOX_QUEUED.clear()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        OUTBOX_QUEUED.set()  # end the wait now
        super().stop(timeout_s)
