"""The demo model's training script still works: a tiny run writes a loadable package with the right outputs,
and the ONNX export computes what the torch model computes."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train_demo_model.py"


def _script() -> Any:
    spec = importlib.util.spec_from_file_location("train_demo_model", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def test_tiny_training_run_writes_a_loadable_package(tmp_path: Path) -> None:
    import onnxruntime as ort

    from radgate.models.package import ModelPackage
    from radgate.synth import PROFILES

    out = tmp_path / "pkg"
    args = [
        "--images",
        "24",
        "--val-images",
        "12",
        "--eval-images",
        "6",
        "--steps",
        "3",
        "--workers",
        "1",
        "--threads",
        "1",
        "--seed",
        "3",
        "--out",
        str(out),
    ]
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]

    package = ModelPackage.open(out)  # checks the manifest and the weights' SHA-256
    manifest = package.manifest
    assert manifest.model.synthetic_training_data is True
    assert manifest.model.task == "triage"
    assert dict(manifest.validated_subgroups) == {"Manufacturer": ("SIEMENS",), "ViewPosition": ("PA", "AP")}
    assert manifest.training_data.profiles == ("siemens-dx",) and manifest.training_data.n_images == 24
    assert manifest.explanation.method == "cam" and manifest.outputs["cam"].kind == "class_activation_map"
    assert 0.0 <= manifest.operating_points[0].threshold <= 1.0

    session = ort.InferenceSession(package.load_weights(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((3, 1, 256, 256), dtype=np.float32)
    probability, cam = session.run(["probability", "cam"], {"image": x})
    assert probability.shape == (3,) and cam.shape == (3, 16, 16)
    assert np.all((probability > 0) & (probability < 1))
    # The CAM is the logit's spatial decomposition: its mean is logit(probability).
    logit = np.log(probability / (1 - probability))
    np.testing.assert_allclose(cam.mean(axis=(1, 2)), logit, rtol=1e-4, atol=1e-4)

    card = (out / "MODEL_CARD.md").read_text()
    assert "No clinical validity" in card and "synthetic" in card.lower()
    for name in PROFILES:  # held-out AUC per profile, trained or not
        assert f"`{name}`" in card
    assert "`siemens-dx` (trained)" in card


def test_onnx_export_matches_the_torch_model() -> None:
    module = _script()
    torch.manual_seed(0)
    demo_cnn, exported = module.build_model()
    net = demo_cnn().eval()
    model = exported(net).eval()
    weights = module.export_onnx(model)
    x = np.random.default_rng(1).random((5, 256, 256)).astype(np.float16)
    onnx_probs, cam_shape = module.predict_onnx(weights, x)
    torch_probs = module.predict_torch(net, x)
    assert cam_shape == (16, 16)
    np.testing.assert_allclose(onnx_probs, torch_probs, rtol=1e-4, atol=1e-5)
