"""Bring your own model: `radgate models import --onnx` and `--monai-bundle` write packages whose manifest
matches the graph; mismatches are one line naming the tensor and the flag; an imported MONAI bundle scores a
series through the normal engine path with the scores torch gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import radgate.cli.models  # noqa: F401  (registers the commands)
from radgate.cli.app import app
from radgate.config import Settings
from radgate.db import Database
from radgate.engine import EngineOptions
from radgate.models import ModelPackage
from radgate.models.importer import (
    ImportAnswers,
    ModelImportError,
    OnnxSignature,
    TensorInfo,
    build_manifest,
    check_signature,
)
from tests.test_engine_support import tiny_onnx

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
