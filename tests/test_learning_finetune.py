"""``radgate models finetune``: the champion's ONNX read back into torch exactly, trained on the site's
labelled cases, exported as a new ONNX version that the engine runs in shadow and ``compare`` and
``promote`` judge like any challenger."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import radgate.cli.learning  # noqa: F401  (registers models finetune)
from radgate.cli.app import app
from radgate.config import Settings
from radgate.db import Database
from radgate.engine import Engine, EngineOptions, Prediction, enqueue_for_series
from radgate.errors import Invalid
from radgate.learning.compare import compare_deployments
from radgate.learning.finetune import _graph_layers, _logits, _torch_model, finetune_model
from radgate.models.package import ModelPackage
from radgate.models.registry import BUNDLED_MODELS, ensure_default_models, get_model, open_model
from radgate.routing import DeploymentSpec
from radgate.synth import image_jobs, render_job, single_profile_scenario
from radgate.validation.truth import import_ground_truth
from tests.helpers.models import deploy
from tests.test_engine_support import index_series, tiny_onnx

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]
FAST = EngineOptions(lease_s=60.0, retry_backoff_s=0.0, poll_interval_s=0.05, max_attempts=2)


def test_the_champion_graph_is_read_back_into_torch_exactly() -> None:
    package = ModelPackage.open(BUNDLED_MODELS[0])
    weights = package.load_weights()
    net, _ = _torch_model(*_graph_layers(weights))
    x = np.random.default_rng(0).random((3, 1, 256, 256), dtype=np.float32)
    session = ort.InferenceSession(weights, providers=["CPUExecutionProvider"])
    prob = session.run(["probability"], {"image": x})[0]
    assert 1 / (1 + np.exp(-_logits(net, x))) == pytest.approx(prob, abs=1e-5)


def test_another_graph_is_refused_with_what_to_do() -> None:
    with pytest.raises(Invalid, match="models import"):
        _graph_layers(tiny_onnx())


def _site(settings: Settings, db: Database, n: int = 44) -> list[tuple[str, str, int]]:
    """``n`` adult frontal agfa-dx images (the profile the demo model misses most), one series each,
    scored by the champion; returns (study, series, label)."""
    jobs = [
        j
        for j in image_jobs(single_profile_scenario("agfa-dx", 3 * n, prevalence=0.5), 11)
        if j.record.view in ("PA", "AP") and j.record.patient.age >= 18
    ][:n]
    out = []
    for job in jobs:
        ds = render_job(job)
        uid = index_series(db, settings, [ds])
        out.append((ds.StudyInstanceUID, uid, int(job.record.pneumothorax is not None)))
    return out


def _enqueue(db: Database, series: list[str]) -> None:
    for uid in series:
        with db.session() as s:
            enqueue_for_series(s, uid)


def test_finetune_then_shadow_compare_and_promote(tmp_path: Path, settings: Settings, db: Database) -> None:
    with db.session() as s:
        ensure_default_models(s, Path(settings.data_dir))
    champion = DeploymentSpec("ptx", "demo-pneumothorax", "1.0.0", mode="silent")
    deploy(db, champion)
    cases = _site(settings, db)
    _enqueue(db, [c[1] for c in cases])
    Engine(settings, db, options=FAST).run_until_idle(600)
    truth = tmp_path / "truth.csv"
    with truth.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["StudyInstanceUID", "SeriesInstanceUID", "label"])
        w.writerows(cases)
    import_ground_truth(db, truth, default_source="radiologist")

    result = finetune_model(db, settings, "demo-pneumothorax", "1.0.0", "default", by="ds", epochs=3, seed=1)
    assert result.version == "1.0.0-ft.default" and result.n == len(cases)
    assert result.positives == sum(c[2] for c in cases) and result.n_train + result.n_validation == result.n
    assert result.auc_after >= result.auc_before  # epoch 0 (the starting weights) is a candidate
    with db.session() as s:
        old, new = get_model(s, "demo-pneumothorax", "1.0.0"), get_model(s, "demo-pneumothorax", result.version)
    assert new.sha256 == result.sha256 != old.sha256
    package = open_model(new)
    assert package.manifest.operating_points[0].threshold == pytest.approx(result.threshold)
    assert "## Site fine-tuning (default)" in package.model_card and "Agfa DX-D 600 (44)" in package.model_card
    assert "Fine-tuned at site default" in package.manifest.training_data.summary

    # the challenger runs in shadow on the same series; compare and promote treat it like any other
    deploy(db, champion, DeploymentSpec("ptx-ft", "demo-pneumothorax", result.version, mode="shadow"))
    criteria = tmp_path / "criteria.toml"
    criteria.write_text("[promotion]\nmin_pairs = 40\ndelta_auc_min = -1.0\n")
    data = ["--data-dir", str(settings.data_dir)]
    runner = CliRunner()
    locked = runner.invoke(
        app, ["deployments", "lock-criteria", "ptx-ft", "--champion", "ptx", "--criteria", str(criteria), *data]
    )
    assert locked.exit_code == 0, locked.output
    _enqueue(db, [c[1] for c in cases])
    Engine(settings, db, options=FAST).run_until_idle(600)
    with db.session() as s:
        shadow = s.scalars(select(Prediction).where(Prediction.deployment == "ptx-ft")).all()
    assert len(shadow) == len(cases)
    comparison = compare_deployments(db, "ptx", "ptx-ft")
    assert comparison.values["n_pairs"] == len(cases)
    assert comparison.values["challenger"]["version"] == result.version
    cli = runner.invoke(app, ["compare", "ptx", "ptx-ft", "--json", *data])
    assert cli.exit_code == 0 and json.loads(cli.output)["n_pairs"] == len(cases)


def test_cli_needs_enough_labels(settings: Settings, db: Database) -> None:
    with db.session() as s:
        ensure_default_models(s, Path(settings.data_dir))
    deploy(db, DeploymentSpec("ptx", "demo-pneumothorax", "1.0.0", mode="silent"))
    out = CliRunner().invoke(
        app, ["models", "finetune", "--deployment", "ptx", "--data-dir", str(settings.data_dir)]
    )
    assert out.exit_code == 2  # Invalid: a bad value (radgate.errors.ErrorKind.exit_code)
    assert "has 0 labelled positive and 0 negative case(s)" in " ".join(out.output.split())
    assert "Traceback" not in out.output
