"""`radgate models import --monai-bundle`: a MONAI bundle the test builds (a tiny monai Classifier), as a
state dict + network_def or as TorchScript, becomes a package that scores like the torch network, through
the normal engine path; a bundle without a network is one line. Needs the train extra (torch, monai)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import radgate.cli.models  # noqa: F401  (registers the commands)
from radgate.cli.app import app
from radgate.config import Settings
from radgate.db import Database
from radgate.engine import Engine, EngineOptions, Prediction, enqueue_for_series
from radgate.inference.preprocess import preprocess
from radgate.models import ModelPackage, add_model
from radgate.routing import DeploymentSpec
from tests.helpers.models import deploy
from tests.test_engine_support import index_series, make_dx

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

runner = CliRunner()
FAST = EngineOptions(lease_s=30.0, retry_backoff_s=0.0, poll_interval_s=0.05, max_attempts=2)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _import(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]  # noqa: A002
    return runner.invoke(app, ["models", "import", *args], input=input)


def test_monai_bundle_imports_and_scores_a_series_through_the_engine(
    tmp_path: Path, settings: Settings, db: Database
) -> None:
    from tests.helpers.monai_bundle import build_bundle

    bundle, net = build_bundle(tmp_path / "tiny_ptx_classifier")
    out = tmp_path / "pkg"
    result = _import(
        "--monai-bundle", str(bundle), "--out", str(out), "--no-interactive",
        "--task", "triage", "--modality", "DX", "--body-part", "CHEST", "--view", "PA,AP",
        "--code", "SCT:36118008:Pneumothorax", "--threshold", "0.5",
    )
    assert result.exit_code == 0, result.output
    m = ModelPackage.open(out).manifest
    # mapped from configs/metadata.json
    assert (m.name, m.version, m.model.licence) == ("tiny-ptx-classifier", "0.2.0", "Apache-2.0")
    assert m.model.description == "A tiny classifier for tests, random weights"
    assert m.intended_use.summary == "Tests only: adult PA/AP chest radiographs"
    assert (m.preprocessing.height, m.preprocessing.width, m.preprocessing.channels) == (32, 32, 1)
    assert m.primary.name == "pneumothorax" and m.primary.output == "probability"
    assert m.explanation.method == "occlusion" and m.training_data.summary == "none: random weights"
    assert "MONAI bundle `tiny_ptx_classifier` version 0.2.0" in ModelPackage.open(out).model_card

    with db.session() as s:
        add_model(s, out, settings.data_dir)
    deploy(db, DeploymentSpec("mine", m.name, m.version, mode="silent"))
    datasets = [make_dx(view="PA"), make_dx(view="PA", bright_lesion=True)]
    for ds in datasets:
        uid = index_series(db, settings, [ds])
        with db.session() as s:
            enqueue_for_series(s, uid)
    Engine(settings, db, options=FAST).run_until_idle(60)
    with db.session() as s:
        scores = {p.SeriesInstanceUID: p.score for p in s.scalars(select(Prediction))}
    assert len(scores) == 2
    for ds in datasets:
        x = torch.from_numpy(preprocess(ds, m.preprocessing)[None])
        with torch.no_grad():
            expected = float(torch.softmax(net(x), dim=1)[0, 1])
        assert scores[ds.SeriesInstanceUID] == pytest.approx(expected, abs=1e-5)  # torch, independently


def test_torchscript_bundle_through_the_form(tmp_path: Path) -> None:
    from tests.helpers.monai_bundle import build_bundle

    bundle, net = build_bundle(tmp_path / "ts_bundle", torchscript=True, seed=1)
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    del meta["license"], meta["intended_use"]
    (bundle / "configs" / "metadata.json").write_text(json.dumps(meta))
    out = tmp_path / "pkg"
    # asked: task, licence, intended use, modalities, code, threshold, training data is mapped; then optional
    answers = "\n".join(["", "CC-BY-4.0", "Adult chest radiographs", "DX", "SCT:36118008:Pneumothorax", "0.3",
                         "", "", "", "", "", ""]) + "\n"
    result = _import("--monai-bundle", str(bundle), "--out", str(out), "--interactive", input=answers)
    assert result.exit_code == 0, result.output
    m = ModelPackage.open(out).manifest
    assert (m.model.task, m.model.licence, m.intended_use.modalities) == ("triage", "CC-BY-4.0", ("DX",))
    assert "models/model.ts (TorchScript)" in ModelPackage.open(out).model_card
    import onnxruntime as ort

    x = np.random.default_rng(3).random((4, 1, 32, 32), dtype=np.float32)
    got = ort.InferenceSession(ModelPackage.open(out).load_weights()).run(None, {"image": x})[0]
    with torch.no_grad():
        expected = torch.softmax(net(torch.from_numpy(x)), dim=1)[:, 1].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_bundle_without_network_or_metadata_is_one_line(tmp_path: Path) -> None:
    from tests.helpers.monai_bundle import build_bundle

    empty = tmp_path / "empty"
    empty.mkdir()
    result = _import("--monai-bundle", str(empty), "--no-interactive")
    assert result.exit_code != 0 and "has no configs/metadata.json; is it a MONAI bundle?" in _flat(result.output)
    bundle, _ = build_bundle(tmp_path / "b")
    (bundle / "models" / "model.pt").unlink()
    result = _import("--monai-bundle", str(bundle), "--no-interactive")
    assert result.exit_code != 0 and "has neither models/model.ts nor models/model.pt" in _flat(result.output)
    assert "Traceback" not in result.output


