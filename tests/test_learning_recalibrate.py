"""Site recalibration: a new version with the same weights, a calibration map the runtime applies, the
cross-validated calibration in the model card (numbers equal the statistics core's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from typer.testing import CliRunner

import radgate.cli.learning  # noqa: F401  (registers the commands)
from radgate.cli.app import app
from radgate.config import Settings
from radgate.db import Database
from radgate.errors import Invalid
from radgate.inference.model import LoadedModel
from radgate.learning.recalibrate import recalibrate_model
from radgate.models.manifest import Manifest
from radgate.models.registry import get_model, open_model
from radgate.stats.calibration import PlattScaling, cross_validated_recalibration, expected_calibration_error
from tests.helpers.learning import paired_site


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_recalibrated_version(tmp_path: Path, settings: Settings, db: Database, method: str) -> None:
    data = paired_site(tmp_path, settings, db, n=500)
    result = recalibrate_model(db, settings, "tiny-ptx", "1.0.0", method, "default", by="ds")
    with db.session() as s:
        old, new = get_model(s, "tiny-ptx", "1.0.0"), get_model(s, "tiny-ptx", result.version)
    assert result.version == f"1.0.0-{method}.default" and new.sha256 == old.sha256 == result.sha256
    package = open_model(new)
    manifest = package.manifest
    assert manifest.calibration is not None and manifest.calibration.method == method
    assert Manifest.from_toml(manifest.to_toml()) == manifest  # the map survives the round trip
    kind: Literal["platt", "isotonic"] = "platt" if method == "platt" else "isotonic"
    ref = cross_validated_recalibration(data["labels"], data["champion"], kind, on_logit=kind == "platt")
    assert result.after["ece"] == pytest.approx(expected_calibration_error(data["labels"], ref.out_of_fold))
    assert result.before["ece"] == pytest.approx(expected_calibration_error(data["labels"], data["champion"]))
    assert result.after["ece"] < result.before["ece"]  # the simulated scores are miscalibrated
    # the runtime applies the map: LoadedModel.scores on a raw output equals the fitted map's prediction
    loaded = LoadedModel(manifest, runtime=None)  # type: ignore[arg-type]
    raw = np.array([[0.05], [0.3], [0.7]])
    got = [loaded.scores({"probability": raw, "cam": raw}, i)["pneumothorax"] for i in range(3)]
    assert got == pytest.approx(ref.model.predict(raw[:, 0]), abs=1e-9)
    if isinstance(ref.model, PlattScaling):
        assert manifest.calibration.slope == pytest.approx(ref.model.slope)
    # thresholds pass through the same map: the flags at each operating point are unchanged
    old_ops = open_model(old).manifest.operating_points
    for before, after in zip(old_ops, manifest.operating_points, strict=True):
        assert after.threshold == pytest.approx(float(ref.model.predict([before.threshold])[0]), abs=1e-9)
    assert "## Site recalibration (default)" in package.model_card and "5-fold CV" in package.model_card


def test_recalibrate_cli_and_errors(tmp_path: Path, settings: Settings, db: Database) -> None:
    paired_site(tmp_path, settings, db, n=300)
    out = CliRunner().invoke(
        app,
        [
            "models",
            "recalibrate",
            "tiny-ptx",
            "1.0.0",
            "--site",
            "default",
            "--json",
            "--data-dir",
            str(settings.data_dir),
        ],
        env={"RADGATE_CONFIG": ""},
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["version"] == "1.0.0-platt.default"
    with pytest.raises(Invalid, match="labelled positive"):
        recalibrate_model(db, settings, "tiny-ptx", "1.0.0", "platt", "north", by="ds")
    with pytest.raises(Invalid, match="platt or isotonic"):
        recalibrate_model(db, settings, "tiny-ptx", "1.0.0", "beta", "default", by="ds")
