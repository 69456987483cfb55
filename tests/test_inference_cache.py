"""Tensors rendered while a series arrives are the engine's inputs at completion (and only when current)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from sqlalchemy import select

from radgate.config import Settings
from radgate.db import Database, Instance
from radgate.engine import Engine, Prediction, enqueue_for_series
from radgate.imaging import to_display
from radgate.inference.cache import TensorCache, TensorPrewarmer
from radgate.inference.preprocess import to_tensor
from radgate.models import ModelPackage, add_model
from radgate.routing import DeploymentSpec, sync_deployments
from tests.test_engine_support import build_package, index_series, make_dx


def _deploy(tmp_path: Path, settings: Settings, db: Database) -> ModelPackage:
    package = build_package(tmp_path / "pkg")
    with db.session() as s:
        add_model(s, package, settings.data_dir)
        sync_deployments(s, [DeploymentSpec("tiny", "tiny-ptx", "1.0.0", site="default", mode="silent")])
    return ModelPackage.open(package)


def test_prewarmed_tensor_equals_the_engine_rendering(tmp_path: Path, settings: Settings, db: Database) -> None:
    prep = _deploy(tmp_path, settings, db).manifest.preprocessing
    uid = index_series(db, settings, [make_dx(bright_lesion=True, photometric="MONOCHROME1")])
    with db.session() as s:
        instance = s.scalars(select(Instance).where(Instance.SeriesInstanceUID == uid)).one()
    ds = pydicom.dcmread(settings.store_dir / instance.path)
    TensorPrewarmer(db, settings.data_dir)(instance, ds)
    cached = TensorCache(settings.data_dir).get(prep, instance.SOPInstanceUID, instance.sha256)
    assert cached is not None
    np.testing.assert_array_equal(cached, to_tensor(to_display(ds), prep))


def test_engine_uses_the_cache_and_ignores_stale_entries(tmp_path: Path, settings: Settings, db: Database) -> None:
    prep = _deploy(tmp_path, settings, db).manifest.preprocessing
    cache = TensorCache(settings.data_dir)
    uids = [index_series(db, settings, [make_dx(bright_lesion=True)]) for _ in range(2)]
    with db.session() as s:
        first, second = (s.scalars(select(Instance).where(Instance.SeriesInstanceUID == u)).one() for u in uids)
    blank = np.zeros((prep.channels, prep.height, prep.width), dtype=np.float32)
    cache.put(prep, first.SOPInstanceUID, first.sha256, blank)  # current: the engine must take it
    cache.put(prep, second.SOPInstanceUID, "0" * 64, blank)  # another content hash: must be ignored
    with db.session() as s:
        for uid in uids:
            enqueue_for_series(s, uid)
    Engine(settings, db).run_until_idle(60)
    with db.session() as s:
        scores = {p.SeriesInstanceUID: p.score for p in s.scalars(select(Prediction))}
    # The tiny model scores brightness in its lesion square: a blank input scores low, the bright lesion high.
    assert scores[uids[0]] < 0.1 < 0.9 < scores[uids[1]]


def test_prewarmer_decodes_through_the_guard(tmp_path: Path, settings: Settings, db: Database) -> None:
    """A panicking or oversized image fails as a DecodeError in the prewarmer, never as a BaseException."""
    import pytest

    from radgate.imaging.decode import DecodeError
    from tests.helpers.faulty import huge_rle, rle_panic

    _deploy(tmp_path, settings, db)
    uid = index_series(db, settings, [make_dx()])
    with db.session() as s:
        instance = s.scalars(select(Instance).where(Instance.SeriesInstanceUID == uid)).one()
    prewarm = TensorPrewarmer(db, settings.data_dir, max_decoded_bytes=16 * 1024**2)
    for ds in (rle_panic(), huge_rle()):
        with pytest.raises(DecodeError):
            prewarm(instance, ds)
