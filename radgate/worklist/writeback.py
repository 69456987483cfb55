"""The radiologist's read written back to the PACS: a new, VERIFIED revision of the AI's SR (+ GSPS).

On ``accept`` or ``modify`` the primary finding's region becomes the radiologist's (a modified region
replaces the AI's); on ``dismiss`` (or modify to absent) the revision carries no region. The AI's measurement
(probability, and its presence at the operating point) is kept as the AI output it is (the SR builder,
:class:`radgate.results.content.AIFinding`, refuses a "present" that contradicts the probability); the read
itself (accepted / modified / dismissed, the finding present or absent, the dismissal reason, free text)
is written beside it in the same measurement group (:mod:`radgate.results.review`), and recorded as ground
truth ``final_read``, in ``review_reads`` and in the audit log.
The revision (PS3.3 C.17.2.3) is the next one of the result's
:class:`radgate.results.identity.ResultIdentity` (counted from the outbox), lists its predecessor in the
Predecessor Documents Sequence, is VERIFIED/FINAL with the signed-in radiologist as Verifying Observer
(C.17.2.1) and keeps each finding's Tracking Identifier and Tracking UID (TID 4108). It is built, written to
``DATA_DIR/results/`` and queued in the outbox in the read's transaction; the outbox worker sends it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from radgate.clock import utcnow
from radgate.config import Settings
from radgate.engine.tables import Prediction
from radgate.policy import Release
from radgate.results.identity import ResultIdentity
from radgate.results.outbox import OutboxItem, StoredObject, enqueue_in, write_instance

__all__ = ["publish_review"]


def _next_revision(session: Session, key: str) -> int:
    last = session.scalar(select(func.max(OutboxItem.revision)).where(OutboxItem.result_key == key))
    return int(last or 0) + 1


def publish_review(
    session: Session,
    settings: Settings,
    prediction: Prediction,
    *,
    observer: str,
    present: bool,
    region: tuple[float, float, float, float] | None,
    kind: str = "accept",
    reason: str | None = None,
    text: str | None = None,
) -> list[StoredObject]:
    """Build and queue the verified revision of ``prediction``'s report; returns the stored objects.

    ``kind`` (accept, modify, dismiss, label), ``present``, ``reason`` and ``text`` are the read, written
    into the primary finding's measurement group (:mod:`radgate.results.review`).
    """

    from radgate.results.outbox import results_store
    from radgate.results.pr import build_gsps_all
    from radgate.results.review import ReviewOutcome
    from radgate.results.send import destinations_from_settings
    from radgate.results.sink import Publisher, result_for, result_identity, scored_image
    from radgate.results.sr import build_sr

    if prediction.policy != Release.RELEASED.value:
        return []  # only released results were ever meant for the PACS
    source = scored_image(session, settings, prediction)
    ds, manifest = source.dataset, source.manifest
    findings = Publisher._findings(manifest, prediction, int(ds.Rows), int(ds.Columns), source.explanation)
    if not findings:
        return []
    primary = manifest.primary.name
    revised = []
    for f in findings:
        if f.name == primary:
            # The measurement stays the AI's own (probability and its presence at the operating point:
            # radgate.results.content.AIFinding keeps them consistent); the radiologist's region replaces
            # the AI's, and a finding the radiologist calls absent loses its region.
            corners = f.region
            if not present:
                corners = None
            elif region is not None:
                left, top, right, bottom = region
                corners = ((left, top), (right, top), (right, bottom), (left, bottom))
            f = replace(f, region=corners)
        revised.append(f)
    result = result_for(prediction, source, revised, with_explanation=False)
    base = result_identity(prediction)
    identity = ResultIdentity(base.key, _next_revision(session, base.key))
    organization = settings.site or "radgate"
    objects: list[tuple[str, Any]] = [
        (
            "SR",
            build_sr(
                result,
                [ds],
                identity,
                verifying_observer_name=observer,
                verifying_organization=organization,
                review=ReviewOutcome(primary, kind, present, reason=reason, text=text),  # type: ignore[arg-type]
            ),
        )
    ]
    objects += [("PR", gsps) for gsps in build_gsps_all(result, [ds], identity)]
    results_dir = results_store(settings.data_dir)
    stored = [write_instance(obj, results_dir, kind) for kind, obj in objects]
    from radgate.routing.tables import DeploymentRow

    deployment = session.scalars(
        select(DeploymentRow).where(DeploymentRow.name == prediction.deployment)
    ).first()
    names = json.loads(deployment.destinations) if deployment is not None and deployment.destinations else []
    if not names:
        names = [d.name for d in destinations_from_settings(settings)]
    enqueue_in(
        session,
        stored,
        names,
        utcnow(),
        result_key=identity.key,
        revision=identity.revision,
        max_attempts=settings.results.outbox_max_attempts,
    )
    return stored
