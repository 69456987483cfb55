"""ONNX Runtime sessions, batching, scores and flags, CAM and occlusion maps on a model whose answers are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from scipy.ndimage import zoom

from radgate.inference import (
    ROUGH_GUIDE,
    ExplanationMap,
    LoadedModel,
    ModelLoadError,
    OnnxRuntime,
    RuntimeOptions,
    available_providers,
    cam_map,
    occlusion_map,
)
from radgate.inference.explain import upsample_linear
from radgate.models import ModelPackage
from tests.test_engine_support import LESION, SIZE, build_package, tiny_onnx


def _images(n: int, bright: tuple[int, ...] = ()) -> np.ndarray:
    batch = np.full((n, 1, SIZE, SIZE), 0.25, dtype=np.float32)
    for i in bright:
        batch[(i, 0, *LESION)] = 1.0
    return batch


def _expected(mean: float, gain: float = 12.0) -> float:
    """The tiny model by hand: sigmoid(gain * (mean - 0.5))."""
    return float(1.0 / (1.0 + np.exp(-gain * (mean - 0.5))))


def test_providers_prefer_cuda_only_when_available() -> None:
    chosen = available_providers(["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert chosen[-1] == "CPUExecutionProvider"
    assert ("CUDAExecutionProvider" in chosen) == ("CUDAExecutionProvider" in ort.get_available_providers())
    assert available_providers(["TensorrtExecutionProvider"])[-1] == "CPUExecutionProvider"


def test_scores_match_the_model_worked_by_hand() -> None:
    runtime = OnnxRuntime(tiny_onnx(), RuntimeOptions(intra_op_threads=1, batch_size=4))
    out = runtime.run(_images(3, bright=(1,)))
    assert out["probability"].shape == (3,) and out["cam"].shape == (3, SIZE // 8, SIZE // 8)
    np.testing.assert_allclose(out["probability"], [_expected(0.25), _expected(1.0), _expected(0.25)], rtol=1e-5)


def test_batches_are_split_for_fixed_batch_models() -> None:
    runtime = OnnxRuntime(tiny_onnx(batch=1), RuntimeOptions(batch_size=8))
    assert runtime.max_batch == 1
    out = runtime.run(_images(5, bright=(4,)))
    assert out["probability"].shape == (5,)
    assert out["probability"][4] > 0.99 > out["probability"][0]


def test_garbage_weights_are_refused() -> None:
    with pytest.raises(ModelLoadError, match="cannot load the weights"):
        OnnxRuntime(b"not an onnx model", label="broken 1.0.0")


def test_manifest_outputs_must_exist_in_graph(tmp_path: Path) -> None:
    # Manifest declares a CAM but the graph has none.
    path = build_package(tmp_path / "pkg", weights=tiny_onnx(with_cam=False))
    with pytest.raises(ModelLoadError, match="names output\\(s\\) cam, but the ONNX graph has only probability"):
        LoadedModel.load(ModelPackage.open(path))


def test_flags_per_operating_point(tmp_path: Path) -> None:
    model = LoadedModel.load(ModelPackage.open(build_package(tmp_path / "pkg")))
    assert model.flags({"pneumothorax": 0.4}) == {"high-sensitivity": True, "balanced": False}
    assert model.flags({"pneumothorax": 0.5}) == {"high-sensitivity": True, "balanced": True}  # at threshold: flag


def test_cam_map_points_at_the_lesion(tmp_path: Path) -> None:
    model = LoadedModel.load(ModelPackage.open(build_package(tmp_path / "pkg")))
    images = _images(1, bright=(0,))
    outputs = model.runtime.run(images)
    exp = model.explain(outputs, 0, images[0], SOPInstanceUID="1.2.3")
    assert exp is not None and exp.method == "cam" and exp.values.shape == (SIZE, SIZE)
    assert exp.values[LESION].mean() > 0.9 and exp.values[20:, 20:].max() < 0.1
    assert exp.note == ROUGH_GUIDE and "rough guide" in exp.note and "not proof" in exp.note


def test_occlusion_map_points_at_the_lesion() -> None:
    runtime = OnnxRuntime(tiny_onnx(with_cam=False))
    image = _images(1, bright=(0,))[0]
    exp = occlusion_map(runtime, image, "probability", patch=8, stride=4, batch_size=16)
    assert exp.method == "occlusion"
    inside, outside = exp.values[LESION].mean(), exp.values[20:, 20:].mean()
    assert inside > 0.5 and outside == 0.0


def test_occlusion_is_the_default_without_cam(tmp_path: Path) -> None:
    model = LoadedModel.load(ModelPackage.open(build_package(tmp_path / "pkg", with_cam=False)))
    images = _images(1, bright=(0,))
    exp = model.explain(model.runtime.run(images), 0, images[0])
    assert exp is not None and exp.method == "occlusion"


@pytest.mark.parametrize(
    ("shape", "out"), [((7, 7), (224, 224)), ((4, 4), (8, 8)), ((7, 5), (224, 160)), ((1, 3), (4, 9)),
                       ((2, 3), (1, 9)), ((5, 5), (5, 12))],
)
def test_cam_upsampling_equals_scipy_zoom(shape: tuple[int, int], out: tuple[int, int]) -> None:
    """The CAM's matrix-product up-sampling gives scipy.ndimage.zoom(order=1)'s values (resize_area's)."""
    cam = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    expected = zoom(cam, (out[0] / shape[0], out[1] / shape[1]), order=1).astype(np.float32)
    assert expected.shape == out
    np.testing.assert_allclose(upsample_linear(cam, *out), expected, rtol=0, atol=1e-6)


def test_map_file_round_trip(tmp_path: Path) -> None:
    exp = cam_map(np.arange(16, dtype=np.float32).reshape(4, 4) - 4, 8, 8, SOPInstanceUID="1.2.3")
    assert exp.values.min() == 0.0 and exp.values.max() == 1.0
    back = ExplanationMap.load(exp.save(tmp_path / "a" / "map.npz"))
    assert back.method == "cam" and back.SOPInstanceUID == "1.2.3" and back.note == ROUGH_GUIDE
    np.testing.assert_allclose(back.values, exp.values, atol=1e-3)  # stored as float16
