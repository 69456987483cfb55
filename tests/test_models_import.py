"""Bring your own model: `radgate models import --onnx` and `--monai-bundle` write packages whose manifest
matches the graph; mismatches are one line naming the tensor and the flag; an imported MONAI bundle scores a
series through the normal engine path with the scores torch gives."""

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
from radgate.models.importer import (
    ImportAnswers,
    ModelImportError,
    OnnxSignature,
    TensorInfo,
    build_manifest,
    check_signature,
)
from radgate.routing import DeploymentSpec
from tests.helpers.models import deploy
from tests.test_engine_support import index_series, make_dx, tiny_onnx

runner = CliRunner()
FAST = EngineOptions(lease_s=30.0, retry_backoff_s=0.0, poll_interval_s=0.05, max_attempts=2)
FLAGS = [
    "--name", "my-ptx", "--task", "triage", "--description", "My pneumothorax model", "--licence", "MIT",
    "--intended-use", "Adult PA chest radiographs", "--modality", "DX,CR", "--body-part", "CHEST", "--view", "PA",
    "--finding", "pneumothorax", "--code", "SCT:36118008:Pneumothorax", "--threshold", "0.4",
    "--sensitivity", "0.9", "--training-data", "synthetic phantoms",
]


def _flat(text: str) -> str:
    """Rich wraps long lines at the terminal's width; the tests read the words."""
    return " ".join(text.split())


def _onnx(tmp_path: Path, **kwargs: object) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(tiny_onnx(**kwargs))  # type: ignore[arg-type]
    return path


def _import(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]  # noqa: A002
    return runner.invoke(app, ["models", "import", *args], input=input)


def test_onnx_import_from_flags_reads_the_graph(tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    result = _import("--onnx", str(_onnx(tmp_path)), "--out", str(out), "--no-interactive", *FLAGS)
    assert result.exit_code == 0, result.output
    assert "image [N, 1, 32, 32] tensor(float)" in _flat(result.output)
    pkg = ModelPackage.open(out)
    m = pkg.manifest
    assert (m.name, m.version, m.model.task) == ("my-ptx", "1.0.0", "triage")
    # from the graph: input name and size, the score output, the CAM output and the explanation it allows
    assert (m.preprocessing.input, m.preprocessing.height, m.preprocessing.width, m.preprocessing.channels) == (
        "image", 32, 32, 1)
    assert m.primary.output == "probability" and m.explanation.method == "cam" and m.explanation.output == "cam"
    assert m.intended_use.modalities == ("DX", "CR") and m.intended_use.views == ("PA",)
    assert m.operating_points[0].threshold == 0.4 and m.operating_points[0].sensitivity == 0.9
    assert pkg.load_weights() == _onnx(tmp_path)  .read_bytes()
    assert "Adult PA chest radiographs" in pkg.model_card and "claims, not a validation" in pkg.model_card


def test_onnx_import_through_the_form(tmp_path: Path) -> None:
    """The form asks for what flags and graph leave open; a wrong answer is asked again."""
    out = tmp_path / "pkg"
    answers = "\n".join([
        "formed",                       # name
        "screening", "diagnostic",      # task: refused, then a valid one
        "Asked for everything",         # description
        "Apache-2.0",                   # licence
        "Adult chest radiographs",      # intended use
        "DX",                           # modalities
        "pneumothorax",                 # finding
        "SCT:36118008:Pneumothorax",    # code
        "high", "0.5",                  # threshold: refused, then a number
        "synthetic",                    # training data
        "CHEST", "PA,AP", "18", "", "", "",  # optional: body parts, views, age min, (age max, Se, Sp empty)
    ]) + "\n"
    result = _import("--onnx", str(_onnx(tmp_path)), "--out", str(out), "--interactive", input=answers)
    assert result.exit_code == 0, result.output
    assert "expected one of triage, diagnostic" in _flat(result.output) and "'high'; expected a number" in _flat(result.output)
    m = ModelPackage.open(out).manifest
    assert (m.name, m.model.task, m.operating_points[0].threshold) == ("formed", "diagnostic", 0.5)
    assert m.intended_use.views == ("PA", "AP") and m.intended_use.age_min == 18 and m.intended_use.age_max is None
    assert m.operating_points[0].sensitivity is None


def test_missing_answers_without_a_terminal_are_named(tmp_path: Path) -> None:
    result = _import("--onnx", str(_onnx(tmp_path)), "--out", str(tmp_path / "pkg"), "--no-interactive",
                     "--name", "x")
    assert result.exit_code != 0
    assert "missing --task, --description, --licence, --intended-use, --modality" in _flat(result.output)
    assert "Traceback" not in result.output and not (tmp_path / "pkg").exists()


@pytest.mark.parametrize(("flags", "message"), [
    (["--output", "prob"], "has no output 'prob' (--output); it has 'probability', 'cam'."),
    (["--height", "64"], "input 'image' has shape [N, 1, 32, 32] tensor(float): dimension 2 is 32, but --height is 64."),
    (["--channels", "3"], "dimension 1 is 1, but --channels is 3."),
    (["--input", "pixels"], "has no input 'pixels' (--input); it has 'image'."),
    (["--cam-output", "logits"], "has no output 'logits' (--cam-output); it has 'probability', 'cam'."),
    (["--output", "cam", "--explanation", "none"],
     "output 'cam' gives shape [2, 4, 4] for 2 images; expected [2] or [2, 1], one score per image."),
    (["--threshold", "1.5"], "--threshold: manifest key 'operating_points[default].threshold' is 1.5"),
    (["--code", "Pneumothorax"], "--code is 'Pneumothorax'; expected SCHEME:VALUE:MEANING"),
    (["--name", "My Model"], "--name: manifest key 'model.name' is 'My Model'"),
])
def test_mismatches_are_one_line_naming_tensor_and_flag(tmp_path: Path, flags: list[str], message: str) -> None:
    result = _import("--onnx", str(_onnx(tmp_path)), "--out", str(tmp_path / "pkg"), "--no-interactive", *FLAGS,
                     *flags)
    assert result.exit_code != 0
    assert message in _flat(result.output), result.output
    assert "Traceback" not in result.output and not (tmp_path / "pkg").exists()


def test_not_an_onnx_file(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a graph")
    result = _import("--onnx", str(bad), "--no-interactive", *FLAGS)
    assert result.exit_code != 0 and "is not an ONNX model ONNX Runtime can load" in _flat(result.output)


def test_dtypes_and_ranks_are_checked() -> None:
    answers = ImportAnswers(
        name="m", task="triage", description="d", licence="l", intended_use="u", modalities=["DX"],
        finding="f", code="SCT:1:f", output="score", height=32, width=32, channels=1, threshold=0.5,
        training_data="t",
    )
    manifest = build_manifest(answers)
    weights = tiny_onnx()
    image = TensorInfo("image", ("N", 1, 32, 32), "tensor(float)")
    cases = [
        (OnnxSignature((TensorInfo("image", ("N", 1, 32, 32), "tensor(uint8)"),), ()),
         "input 'image' is tensor(uint8); radgate feeds tensor(float)"),
        (OnnxSignature((TensorInfo("image", ("N", 32, 32), "tensor(float)"),), ()), "expected rank 4"),
        (OnnxSignature((image,), (TensorInfo("score", ("N",), "tensor(int64)"),)),
         "output 'score' is tensor(int64); a score output must be a float tensor"),
        (OnnxSignature((image, TensorInfo("mask", ("N",), "tensor(float)")), ()),
         "further inputs 'mask'; radgate feeds one image tensor"),
    ]
    for sig, message in cases:
        with pytest.raises(ModelImportError) as info:
            check_signature(manifest, sig, weights, "m.onnx")
        assert message in str(info.value)


# -- MONAI bundles -------------------------------------------------------------------------------------------

torch = pytest.importorskip("torch")
pytest.importorskip("monai")


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


def test_import_and_install_in_one_step(tmp_path: Path, settings: Settings, db: Database) -> None:
    out = tmp_path / "pkg"
    result = _import("--onnx", str(_onnx(tmp_path)), "--out", str(out), "--no-interactive", *FLAGS, "--install",
                     "--data-dir", str(settings.data_dir), "--by", "dr.lee")
    assert result.exit_code == 0, result.output
    assert "Installed my-ptx 1.0.0 (triage)" in _flat(result.output)
    from radgate.models import get_model

    with db.session() as s:
        model = get_model(s, "my-ptx", "1.0.0")
    assert model.registered_by == "dr.lee" and model.manifest == ModelPackage.open(out).manifest
    again = _import("--onnx", str(_onnx(tmp_path)), "--out", str(out), "--no-interactive", *FLAGS)
    assert again.exit_code != 0 and "already exists and is not empty; choose another --out" in _flat(again.output)


def test_bundle_metadata_problems_name_the_file_and_key(tmp_path: Path) -> None:
    from radgate.models.monai_bundle import read_metadata
    from tests.helpers.monai_bundle import metadata

    bundle = tmp_path / "b"
    (bundle / "configs").mkdir(parents=True)
    path = bundle / "configs" / "metadata.json"
    path.write_text("{not json")
    with pytest.raises(ModelImportError, match="metadata.json: not readable JSON"):
        read_metadata(bundle)
    meta = metadata()
    meta["network_data_format"]["inputs"]["image"]["spatial_shape"] = [96, 96, 96]
    path.write_text(json.dumps(meta))
    with pytest.raises(ModelImportError) as info:
        read_metadata(bundle)
    assert "inputs.image.spatial_shape is [96, 96, 96]; radgate feeds 2-D images" in str(info.value)
    meta["network_data_format"] = {}
    path.write_text(json.dumps(meta))
    with pytest.raises(ModelImportError, match="network_data_format needs 'inputs' and 'outputs'"):
        read_metadata(bundle)
