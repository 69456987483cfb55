"""Inference: runtimes (ONNX Runtime, CPU or CUDA), preprocessing, scores, flags and explanation maps."""

from radgate.inference.explain import ROUGH_GUIDE, ExplanationMap, cam_map, occlusion_map
from radgate.inference.model import LoadedModel, RuntimeFactory, onnx_runtime_factory
from radgate.inference.preprocess import preprocess, to_tensor
from radgate.inference.runtime import (
    ModelLoadError,
    ModelRuntime,
    OnnxRuntime,
    RuntimeOptions,
    available_providers,
)

__all__ = [
    "ROUGH_GUIDE",
    "ExplanationMap",
    "LoadedModel",
    "ModelLoadError",
    "ModelRuntime",
    "OnnxRuntime",
    "RuntimeFactory",
    "RuntimeOptions",
    "available_providers",
    "cam_map",
    "occlusion_map",
    "onnx_runtime_factory",
    "preprocess",
    "to_tensor",
]
