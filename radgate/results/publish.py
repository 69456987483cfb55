"""Publishing an AI result: build its objects, store them, queue them for every destination — released only.

The policy stage (:mod:`radgate.policy`) decides what a result becomes (:class:`radgate.policy.Release`);
this module decides nothing itself. Only a ``released`` result leaves radgate: a ``silent``, ``shadow``,
``withheld`` or ``off`` one is stored and never shown nor sent, so :func:`publish` writes nothing and queues
nothing for it (``tests/test_results_outbox.py`` proves it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from pydicom.dataset import Dataset
from sqlalchemy.orm import Session

from radgate.clock import utcnow
from radgate.db import Database
from radgate.policy.enum import Mode, Release
from radgate.results.content import AIResult
from radgate.results.identity import ResultIdentity
from radgate.results.outbox import DEFAULT_MAX_ATTEMPTS, StoredObject, enqueue, enqueue_in, write_instance
from radgate.results.pr import build_gsps_all
from radgate.results.sc import build_heatmap_sc
from radgate.results.source import index_sources
from radgate.results.sr import build_sr

__all__ = ["MODES", "build_objects", "publish"]

log = logging.getLogger(__name__)

#: The deployment modes (kept for callers that list them; the policy's Mode enum is the declaration).
MODES = tuple(m.value for m in Mode)


def build_objects(
    result: AIResult,
    sources: Sequence[Dataset],
    identity: ResultIdentity,
    *,
    heatmap: bool = False,
    institution_name: str | None = None,
) -> list[tuple[str, Dataset]]:
    """The objects of one result as ``(kind, dataset)``: the SR, a GSPS per source image, and optionally a
    heatmap SC per source image that has an explanation map."""
    used = index_sources(result, sources)
    objects: list[tuple[str, Dataset]] = [
        ("SR", build_sr(result, sources, identity, institution_name=institution_name))
    ]
    objects += [
        ("PR", gsps) for gsps in build_gsps_all(result, sources, identity, institution_name=institution_name)
    ]
    if heatmap:
        objects += [
            ("SC", build_heatmap_sc(result, used[uid], identity))
            for uid in result.source_uids
            if uid in result.explanations
        ]
    return objects


def publish(
    db: Database | Session,
    result: AIResult,
    sources: Sequence[Dataset],
    identity: ResultIdentity,
    *,
    release: Release | str,
    destinations: Sequence[str],
    results_dir: Path,
    now: datetime | None = None,
    heatmap: bool = False,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    institution_name: str | None = None,
) -> list[StoredObject]:
    """Build, store and queue the objects of a ``released`` result; do nothing for any other release.

    ``db`` is a :class:`Database` (its own transaction) or an open ``Session`` (the caller's transaction,
    as a :class:`radgate.engine.ResultSink` has). ``destinations`` are destination names
    (``Destination.name``); :func:`radgate.results.deliver_pending` sends them. Returns the stored
    objects (empty when nothing is published).
    """
    try:
        release = Release(release)
    except ValueError:
        raise ValueError(
            f"release {release!r} is not one of {', '.join(r.value for r in Release)}."
        ) from None
    if release is not Release.RELEASED:
        log.info("results of %s (key %s) not published: %s", result.model_name, identity.key, release.value)
        return []
    objects = build_objects(result, sources, identity, heatmap=heatmap, institution_name=institution_name)
    stored = [write_instance(ds, results_dir, kind) for kind, ds in objects]
    queue = enqueue_in if isinstance(db, Session) else enqueue
    added = queue(
        db,  # type: ignore[arg-type]
        stored,
        destinations,
        now or utcnow(),
        result_key=identity.key,
        revision=identity.revision,
        max_attempts=max_attempts,
    )
    log.info(
        "results of %s (key %s, revision %d): %d objects stored, %d outbox rows queued",
        result.model_name,
        identity.key,
        identity.revision,
        len(stored),
        added,
    )
    return stored
