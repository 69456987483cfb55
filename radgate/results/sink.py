"""Released result -> SR + GSPS in the outbox, after the engine's commit.

The engine stores each prediction with its policy decision and, for a released one, a publish intent
(:class:`radgate.policy.tables.PublishIntent`). The results worker (:class:`ResultsWorker`) claims intents
with the shared lease primitive and, for each, in its own transaction: reads the scored source image, rebuilds
the VOI window the model saw (:func:`radgate.imaging.to_display`), turns the explanation map into a region
outline for a present finding, builds the objects with :func:`radgate.results.publish` (only the findings the
decision lets through) and queues one outbox row per destination. Then it sends due outbox rows. No file is
built and nothing is sent inside the engine's transaction, so SQLite's write lock is never held for it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from radgate.background import PeriodicService
from radgate.clock import utcnow
from radgate.config import Settings
from radgate.db import Database, Instance
from radgate.db.lease import LeasedQueue
from radgate.db.queries import newest_instances
from radgate.engine.tables import Prediction
from radgate.engine.worker import PUBLISH_QUEUED
from radgate.imaging import DisplayImage, to_display
from radgate.inference.explain import ExplanationMap
from radgate.models import get_model
from radgate.models.manifest import Manifest
from radgate.policy import IncidentalRule, Release
from radgate.policy.tables import PublishIntent
from radgate.results.content import AIFinding, AIResult, Concept
from radgate.results.identity import ResultIdentity
from radgate.results.outbox import deliver_pending, results_store
from radgate.results.publish import publish
from radgate.results.send import Destination, destinations_from_settings, parse_destination
from radgate.routing.tables import DeploymentRow
from radgate.storage import blobs_for

__all__ = [
    "OUTBOX_QUEUED",
    "INTENTS",
    "OutboxWorker",
    "Publisher",
    "ScoredImage",
    "ResultsWorker",
    "publish_pending",
    "region_from_map",
    "result_for",
    "result_identity",
    "scored_image",
]

log = logging.getLogger(__name__)

#: Set when new publish intents or outbox rows have been committed in this process: the results worker
#: runs at once (one event for both, so one wait wakes it).
OUTBOX_QUEUED = PUBLISH_QUEUED


#: The lease operations on publish intents (the same primitive as the engine's jobs).
INTENTS = LeasedQueue(PublishIntent)


def result_identity(prediction: Prediction) -> ResultIdentity:
    """One identity per (series, deployment, model version): re-publishing reuses its UIDs (no duplicates)."""
    return ResultIdentity(
        f"{prediction.SeriesInstanceUID}/{prediction.deployment}/{prediction.model_name}/"
        f"{prediction.model_version}"
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


@dataclass(frozen=True)
class ScoredImage:
    """A prediction's scored source image as stored, with what every result object for it is built from."""

    manifest: Manifest
    dataset: pydicom.Dataset
    display: DisplayImage  # the VOI the model saw (radgate.imaging.to_display)
    explanation: np.ndarray | None  # the explanation map, when one was stored


def scored_image(session: Session, settings: Settings, prediction: Prediction) -> ScoredImage:
    """Read ``prediction``'s source image (newest revision), its display VOI and its explanation map."""
    manifest = get_model(session, prediction.model_name, prediction.model_version).manifest
    instance = session.scalars(
        newest_instances(prediction.SeriesInstanceUID).where(
            Instance.SOPInstanceUID == prediction.SOPInstanceUID
        )
    ).first()
    if instance is None:
        raise LookupError(f"Source image {prediction.SOPInstanceUID} of the prediction is not in the store.")
    ds = pydicom.dcmread(blobs_for(settings).local_path(instance.path))
    display = to_display(ds, max_bytes=settings.ingest.max_decoded_bytes)
    explanation = None
    if prediction.explanation_path:
        path = Path(settings.data_dir) / prediction.explanation_path
        if path.is_file():
            explanation = ExplanationMap.load(path).values
    return ScoredImage(manifest, ds, display, explanation)


def result_for(
    prediction: Prediction, source: ScoredImage, findings: Sequence[AIFinding], *, with_explanation: bool
) -> AIResult:
    """The :class:`AIResult` of ``prediction`` with ``findings`` (the AI's, or a radiologist's revision)."""
    explanations = {}
    if with_explanation and source.explanation is not None:
        explanations = {prediction.SOPInstanceUID: source.explanation}
    return AIResult(
        model_name=prediction.model_name,
        model_version=prediction.model_version,
        model_sha256=prediction.model_sha256,
        synthetic=source.manifest.model.synthetic_training_data,
        task=source.manifest.model.task,
        findings=tuple(findings),
        window_center=source.display.window_center,
        window_width=max(source.display.window_width, 1.0),
        voi_source=source.display.voi_source,
        explanations=explanations,
    )


class Publisher:
    """Builds a released prediction's DICOM SR (TID 1500) + GSPS, optionally a heatmap SC, into the outbox."""

    def __init__(
        self, settings: Settings, destinations: Sequence[Destination], heatmap: bool = False
    ) -> None:
        self.settings = settings
        self.default_destinations = [d.name for d in destinations]
        self.heatmap = heatmap
        self.results_dir = results_store(settings.data_dir)

    def publish_prediction(self, session: Session, prediction: Prediction) -> None:
        if prediction.policy != Release.RELEASED.value:
            raise ValueError(
                f"prediction {prediction.id} is {prediction.policy} ({prediction.policy_reason}); "
                "only released results are published"
            )
        if self.settings.results.release == "after_review":
            # results.release = "after_review" (issue 11): nothing reaches the PACS before a radiologist has
            # reviewed it; the review writes the VERIFIED report (radgate.worklist.writeback.publish_review).
            log.info("prediction %d: held for review (results.release = after_review)", prediction.id)
            return
        source = scored_image(session, self.settings, prediction)
        ds, explanation = source.dataset, source.explanation
        findings = self._findings(source.manifest, prediction, int(ds.Rows), int(ds.Columns), explanation)
        if not findings:
            log.info("prediction %d: no finding is reported (incidental rule); nothing sent", prediction.id)
            return
        result = result_for(prediction, source, findings, with_explanation=True)
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
            release=Release(prediction.policy),
            destinations=names or self.default_destinations,
            results_dir=self.results_dir,
            heatmap=self.heatmap and explanation is not None,
            max_attempts=self.settings.results.outbox_max_attempts,
        )

    @staticmethod
    def _findings(
        manifest: Manifest, prediction: Prediction, rows: int, columns: int, explanation: np.ndarray | None
    ) -> list[AIFinding]:
        """The findings the policy decision lets through to the PACS (``disposition`` report)."""
        decided = {f["name"]: f for f in json.loads(prediction.findings or "[]")}
        findings = []
        for finding in manifest.findings:
            d = decided.get(finding.name)
            if d is None or d["disposition"] != IncidentalRule.REPORT.value:
                continue
            present = bool(d["present"])
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
                    probability=min(max(float(d["score"]), 0.0), 1.0),
                    threshold=float(d["threshold"]),
                    operating_point=str(d["operating_point"]),
                    present=present,
                    SOPInstanceUID=prediction.SOPInstanceUID,
                    region=region,
                )
            )
        return findings


def publish_pending(
    db: Database, publisher: Publisher, worker: str = "results", limit: int = 16, lease_s: float = 60.0
) -> int:
    """Build the objects of up to ``limit`` queued publish intents; returns how many were published."""
    with db.session() as s:
        INTENTS.reap(s)
        ids = INTENTS.claim(s, [r.id for r in INTENTS.candidates(s, limit)], worker, lease_s)
        intents = [(i.id, i.prediction_id, i.attempts, i.max_attempts) for i in
                   s.scalars(select(PublishIntent).where(PublishIntent.id.in_(ids)))]
    done = 0
    for intent_id, prediction_id, attempts, max_attempts in intents:
        try:
            with db.session() as s:
                prediction = s.get(Prediction, prediction_id)
                if prediction is None:
                    raise LookupError(f"prediction {prediction_id} is gone")
                publisher.publish_prediction(s, prediction)
                if not INTENTS.finish(s, intent_id, worker):
                    raise _IntentLostError
            done += 1
        except _IntentLostError:
            log.warning("publish intent %d: lease lost to another worker", intent_id)
        except Exception as exc:  # one bad result must not stop the others
            with db.session() as s:
                status = INTENTS.release(
                    s, intent_id, attempts, max_attempts, worker, f"{type(exc).__name__}: {exc}",
                    publisher.settings.results.outbox_backoff_s,
                )
            log.warning("publish intent %d (prediction %d): %s -> %s", intent_id, prediction_id, exc, status)
    return done


class _IntentLostError(Exception):
    """Another results worker took this intent over."""


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


class ResultsWorker(PeriodicService):
    """Background service: builds released results (publish intents), then sends due outbox rows.

    Woken at once by new intents and outbox rows, else every ``outbox_poll_s`` for retries (the outbox does
    the backoff)."""

    thread_name = "radgate-results"

    def __init__(
        self,
        settings: Settings,
        db: Database,
        interval_s: float | None = None,
        publisher: Publisher | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.db = db
        self.interval_s = settings.results.outbox_poll_s if interval_s is None else interval_s
        self.publisher = publisher or Publisher(settings, destinations_from_settings(settings))

    def publish_once(self) -> int:
        """Build the objects of queued publish intents; returns how many were published."""
        return publish_pending(self.db, self.publisher)

    def run_once(self) -> int:
        """Publish queued intents, then send what is due; returns how many objects were sent."""
        self.publish_once()
        report = deliver_pending(
            self.db,
            all_destinations(self.settings, self.db),
            utcnow(),
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


#: The name it had when it only sent the outbox.
OutboxWorker = ResultsWorker
