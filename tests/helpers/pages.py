"""A site with something on every page: a synthetic model deployed live and silent, routed series (one that
does not fit), published results in the outbox, a rejection."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from radgate.clock import utcnow
from radgate.config import Settings
from radgate.db import Database, Rejection
from radgate.engine import Engine, EngineOptions, enqueue_for_series
from radgate.results.sink import ResultsWorker
from radgate.routing import DeploymentSpec
from tests.helpers.models import deploy, install, manifest_with
from tests.test_engine_support import index_series, make_dx

FAST = EngineOptions(lease_s=30.0, retry_backoff_s=0.0, poll_interval_s=0.05, max_attempts=2)
CARD_MARKER = "<script>alert('card')</script>"


@dataclass(frozen=True)
class Site:
    flagged: str  # a PA series with the bright lesion, scored by both deployments
    lateral: str  # a lateral series: not applicable to a PA/AP model
    rejected_uid: str


def populate(tmp_path: Path, settings: Settings, db: Database) -> Site:
    manifest = manifest_with()
    manifest["model"] = {**copy.deepcopy(manifest["model"]), "synthetic_training_data": True}
    install(tmp_path, settings, db, manifest)
    deploy(
        db,
        DeploymentSpec("ptx-live", "tiny-ptx", "1.0.0", mode="live"),
        DeploymentSpec("ptx-trial", "tiny-ptx", "1.0.0", mode="silent"),
    )
    flagged = index_series(db, settings, [make_dx(view="PA", bright_lesion=True)])
    lateral = index_series(db, settings, [make_dx(view="LL")])
    with db.session() as s:
        enqueue_for_series(s, flagged)
        enqueue_for_series(s, lateral)
        s.add(Rejection(at=utcnow(), source="dimse", calling_ae="MODALITY1", SOPInstanceUID="1.2.3.4.5",
                        status=0xA900, reason="SOP Class UID does not match the dataset"))
    Engine(settings, db, options=FAST).run_until_idle(30)
    ResultsWorker(settings, db).publish_once()
    return Site(flagged, lateral, "1.2.3.4.5")
