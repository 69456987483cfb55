"""Publishing an AI result: build its objects, store them, queue them for every destination — live only.

The policy decides a deployment's mode (``off`` | ``silent`` | ``live``). Only ``live`` results leave
radgate: a ``silent`` result is run and logged for the silent trial, never shown nor sent, so
:func:`publish` writes nothing and queues nothing for it (``tests/test_results_outbox.py`` proves it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from pydicom.dataset import Dataset
from sqlalchemy.orm import Session

from radgate.db import Database
from radgate.results.content import AIResult
from radgate.results.identity import ResultIdentity
from radgate.results.outbox import DEFAULT_MAX_ATTEMPTS, StoredObject, enqueue, enqueue_in, write_instance
from radgate.results.pr import build_gsps_all
from radgate.results.sc import build_heatmap_sc
from radgate.results.source import index_sources
from radgate.results.sr import build_sr

__all__ = ["MODES", "build_objects", "publish"]

log = logging.getLogger(__name__)

MODES = ("off", "silent", "live")


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
    mode: str,
    destinations: Sequence[str],
    results_dir: Path,
    now: datetime | None = None,
    heatmap: bool = False,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    institution_name: str | None = None,
) -> list[StoredObject]:
    """Build, store and queue the objects of a ``live`` result; do nothing for ``silent`` or ``off``.

    ``db`` is a :class:`Database` (its own transaction) or an open ``Session`` (the caller's transaction,
    as a :class:`radgate.engine.ResultSink` has). ``destinations`` are destination names
    (``Destination.name``); :func:`radgate.results.deliver_pending` sends them. Returns the stored
    objects (empty when nothing is published).
    """
    if mode not in MODES:
        raise ValueError(f"Deployment mode {mode!r} is not one of {', '.join(MODES)}.")
    if mode != "live":
        log.info("results of %s (key %s) not published: mode %s", result.model_name, identity.key, mode)
        return []
    objects = build_objects(result, sources, identity, heatmap=heatmap, institution_name=institution_name)
    stored = [write_instance(ds, results_dir, kind) for kind, ds in objects]
    queue = enqueue_in if isinstance(db, Session) else enqueue
    added = queue(
        db,  # type: ignore[arg-type]
        stored,
        destinations,
        now or datetime.now(),
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
