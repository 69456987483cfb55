"""Image statistics for ``input_drift``: measured once per image by the engine on the model input, after the
display transform the model sees, and compared per period like the numeric header features."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset
from scipy.signal import convolve2d
from sqlalchemy import select

import radgate.synth.profiles as profiles_module
from radgate.config import MonitoringSettings, Settings
from radgate.db import Database
from radgate.db.schema import Instance
from radgate.engine import Engine, EngineOptions, Prediction, enqueue_for_series
from radgate.imaging.decode import read_dataset
from radgate.inference.cache import preprocessing_signature
from radgate.inference.preprocess import preprocess
from radgate.models.manifest import Preprocessing
from radgate.models.package import ModelPackage
from radgate.models.registry import BUNDLED_MODELS, ensure_default_models, get_model, open_model
from radgate.monitoring.imagestats import (
    IMAGE_FEATURES,
    image_statistics,
    model_input_pixels,
    noise_sigma,
)
from radgate.monitoring.service import analyse
from radgate.monitoring.simulate import simulate_site
from radgate.monitoring.tables import ImageStatisticRow
from radgate.routing import DeploymentSpec
from radgate.synth import PROFILES, image_jobs, render_job, single_profile_scenario
from radgate.synth.profiles import ImageCharacter
from tests.helpers.models import deploy
from tests.helpers.monitoring import steady_site
from tests.test_engine_support import index_series

FAST = EngineOptions(lease_s=30.0, retry_backoff_s=0.0, poll_interval_s=0.05, max_attempts=2)


def _prep() -> Preprocessing:
    return ModelPackage.open(BUNDLED_MODELS[0]).manifest.preprocessing


def _frontal(profile: str, n: int = 1, seed: int = 5) -> list[Dataset]:
    """``n`` adult frontal (PA/AP) images of ``profile``, rendered (one series each)."""
    jobs = [
        j
        for j in image_jobs(single_profile_scenario(profile, 6 * n + 6, prevalence=0.3), seed)
        if j.record.view in ("PA", "AP") and j.record.patient.age >= 18
    ]
    return [render_job(j) for j in jobs[:n]]


@pytest.mark.parametrize("sigma", [0.005, 0.02, 0.08])
def test_noise_estimate_recovers_a_known_sigma(sigma: float) -> None:
    # Immerkær 1996: the estimator is unbiased for Gaussian noise on a locally linear image (the Laplacian
    # difference kernel cancels planes). A plane + N(0, sigma) noise: within 3% of sigma.
    rng = np.random.default_rng(int(sigma * 1e4))
    yy, xx = np.mgrid[0:256, 0:256] / 256.0
    image = 0.2 + 0.3 * xx + 0.1 * yy + rng.normal(0.0, sigma, (256, 256))
    assert noise_sigma(image) == pytest.approx(sigma, rel=0.03)
    # the same formula through scipy's 2-D convolution (an independent implementation of the sum)
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=float)
    direct = np.sqrt(np.pi / 2) * np.abs(convolve2d(image, kernel, mode="valid")).sum() / (6 * 254 * 254)
    assert noise_sigma(image) == pytest.approx(direct, rel=1e-12)


def test_statistics_are_those_of_the_image() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((64, 80))
    st = image_statistics(x)
    assert (st.p05, st.p50, st.p95) == pytest.approx(tuple(np.percentile(x, [5, 50, 95])))
    assert st.contrast == pytest.approx(float(np.std(x)))


def test_monochrome1_is_measured_after_its_inversion() -> None:
    """ge-dx stores MONOCHROME1 with a window. Its MONOCHROME2 twin (stored values mirrored, window centre
    mirrored: c' = max + 1 - c, PS3.3 C.11.2.1.2) displays the same image, so its statistics must match;
    the raw stored values' statistics would be mirrored instead."""
    (ds,) = _frontal("ge-dx")
    assert ds.PhotometricInterpretation == "MONOCHROME1" and ds.RescaleSlope == 1 and ds.RescaleIntercept == 0
    prep = _prep()
    top = 2 ** int(ds.BitsStored) - 1
    twin = copy.deepcopy(ds)
    twin.PhotometricInterpretation = "MONOCHROME2"
    twin.PixelData = (top - ds.pixel_array.astype(np.int64)).astype(ds.pixel_array.dtype).tobytes()
    twin.WindowCenter = top + 1 - float(ds.WindowCenter)
    a = image_statistics(model_input_pixels(preprocess(ds, prep), prep))
    b = image_statistics(model_input_pixels(preprocess(twin, prep), prep))
    for field in ("p05", "p50", "p95", "contrast", "noise"):
        assert getattr(a, field) == pytest.approx(getattr(b, field), abs=2e-3), field
    raw = ds.pixel_array.astype(np.float64) / top
    assert abs(np.percentile(raw, 50) - a.p50) > 0.05  # not the stored values


def test_engine_stores_them_once_per_image_for_all_six_vendor_profiles(
    settings: Settings, db: Database
) -> None:
    """Every profile (MONOCHROME1 and 2, windows and VOI LUTs, CR and DX): the engine's stored statistics
    equal those of the model input ``preprocess`` renders (tests/test_inference_preprocess.py checks that
    rendering against DCMTK's dcmj2pnm); a second deployment of the same model does not measure again."""
    with db.session() as s:
        ensure_default_models(s, Path(settings.data_dir))
    deploy(
        db,
        DeploymentSpec("ptx-a", "demo-pneumothorax", "1.0.0", mode="silent"),
        DeploymentSpec("ptx-b", "demo-pneumothorax", "1.0.0", mode="silent"),
    )
    assert sorted(PROFILES) == sorted(
        ["fuji-cr", "siemens-dx", "ge-dx", "agfa-dx", "carestream-portable", "philips-dx"]
    )
    for profile in PROFILES:
        (ds,) = _frontal(profile)
        uid = index_series(db, settings, [ds])
        with db.session() as s:
            enqueue_for_series(s, uid)
    Engine(settings, db, options=FAST).run_until_idle(120)
    with db.session() as s:
        preds = s.scalars(select(Prediction)).all()
        rows = {r.SOPInstanceUID: r for r in s.scalars(select(ImageStatisticRow))}
        paths = {
            i.SOPInstanceUID: (i.path, i.sha256, i.PhotometricInterpretation) for i in s.scalars(select(Instance))
        }
        installed = get_model(s, "demo-pneumothorax", "1.0.0")
        s.expunge_all()
    prep = open_model(installed).manifest.preprocessing
    assert len(preds) == 12 and len(rows) == 6  # two deployments, six images, measured once each
    assert {p[2] for p in paths.values()} == {"MONOCHROME1", "MONOCHROME2"}
    for uid, row in rows.items():
        path, sha256, _ = paths[uid]
        assert row.sha256 == sha256 and row.transform == preprocessing_signature(prep)
        expected = image_statistics(
            model_input_pixels(preprocess(read_dataset(Path(settings.store_dir) / path), prep), prep)
        )
        for field in ("p05", "p50", "p95", "contrast", "noise"):
            assert getattr(row, field) == pytest.approx(getattr(expected, field), rel=1e-6), field
        assert 0.0 <= row.p05 <= row.p50 <= row.p95 <= 1.0 + 1e-6 and row.noise > 0  # float32 input


def _pool(profile: str, n: int, character: ImageCharacter | None = None) -> np.ndarray:
    """Statistics (n x 5) of ``n`` rendered images of ``profile`` (optionally with other processing)."""
    prep = _prep()
    original = PROFILES[profile]
    if character is not None:
        profiles_module.PROFILES[profile] = dataclasses.replace(original, character=character)
    try:
        out = []
        for ds in _frontal(profile, n, seed=zlib.crc32(f"{profile}{character}".encode()) % 1000):
            st = image_statistics(model_input_pixels(preprocess(ds, prep), prep))
            out.append([st.p05, st.p50, st.p95, st.contrast, st.noise])
    finally:
        profiles_module.PROFILES[profile] = original
    return np.asarray(out)


def test_input_drift_flags_a_vendor_processing_change_the_headers_do_not_show(db: Database) -> None:
    """A year at a steady site (same vendors, same headers throughout); from 2024-08 the ge-dx room's
    software changes its gradation (contrast and brightness of the processing curve). No header feature
    moves; the image statistics do, in 2024-08 and not before."""
    scenario = steady_site(months=12, per_month=200)
    simulate_site(db, scenario, seed=4)
    ge = PROFILES["ge-dx"].character
    changed = ImageCharacter(**{**ge.__dict__, "contrast": ge.contrast * 0.5, "brightness": ge.brightness + 0.15})
    pools = {p: _pool(p, 12) for p in ("ge-dx", "fuji-cr", "carestream-portable")}
    pools["ge-dx-new"] = _pool("ge-dx", 12, changed)
    change = dt.date(2024, 8, 1)
    rng = np.random.default_rng(9)
    with db.session() as s:
        rows = s.execute(
            select(Prediction.SOPInstanceUID, Prediction.features, Prediction.created_at)
        ).all()
        for uid, features, created in rows:
            manufacturer = json.loads(features)["Manufacturer"]
            profile = next(p for p in pools if p in PROFILES and PROFILES[p].manufacturer == manufacturer)
            if profile == "ge-dx" and created.date() >= change:
                profile = "ge-dx-new"
            st = pools[profile][rng.integers(len(pools[profile]))]
            s.add(
                ImageStatisticRow(
                    SOPInstanceUID=uid,
                    sha256=hashlib.sha256(uid.encode()).hexdigest(),
                    transform="test",
                    **dict(zip(IMAGE_FEATURES.values(), map(float, st), strict=True)),
                    created_at=created,
                )
            )
    summary = analyse(db, MonitoringSettings(rules=["input_drift"]), dt.date(2024, 12, 31))
    (dep,) = summary.deployments
    fired = {(f.scope, f.period) for f in dep.findings}
    image = {(scope, period) for scope, period in fired if scope.startswith("feature:image_")}
    headers = fired - image
    assert not headers, headers  # nothing in the headers changed
    assert image and min(period for _, period in image) == "2024-08", sorted(image)
    assert {scope for scope, period in image if period == "2024-08"} >= {"feature:image_p50"}
    points = [d for d in dep.drift if d["feature"] == "image_p50"]
    assert points and all(d["kind"] == "image" for d in points)
