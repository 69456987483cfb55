"""A loaded model: a hash-checked package, its runtime, and the post-processing its manifest describes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from radgate.inference.explain import ExplanationMap, cam_map, occlusion_map
from radgate.inference.runtime import ModelLoadError, ModelRuntime, OnnxRuntime, RuntimeOptions
from radgate.models.manifest import Manifest
from radgate.models.package import ModelPackage

__all__ = ["LoadedModel", "RuntimeFactory", "onnx_runtime_factory"]

#: Builds a runtime from verified weights: ``(weights, options, input_name, label) -> ModelRuntime``.
RuntimeFactory = Callable[[bytes, RuntimeOptions, str, str], ModelRuntime]


def onnx_runtime_factory(
    weights: bytes, options: RuntimeOptions, input_name: str, label: str
) -> ModelRuntime:
    return OnnxRuntime(weights, options, input_name=input_name, label=label)


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run: manifest, runtime, and how to read scores, flags and maps from its outputs."""

    manifest: Manifest
    runtime: ModelRuntime

    @classmethod
    def load(
        cls,
        package: ModelPackage,
        options: RuntimeOptions | None = None,
        factory: RuntimeFactory = onnx_runtime_factory,
    ) -> LoadedModel:
        """Load the package's weights (SHA-256 checked: a mismatch raises ``PackageIntegrityError``)."""
        weights = package.load_weights()
        manifest = package.manifest
        runtime = factory(weights, options or RuntimeOptions(), manifest.preprocessing.input, package.label)
        declared = {f.output for f in manifest.findings}
        if manifest.explanation.method == "cam" and manifest.explanation.output:
            declared.add(manifest.explanation.output)
        missing = sorted(declared - set(runtime.output_names))
        if missing:
            raise ModelLoadError(
                f"Model {package.label}: its manifest names output(s) {', '.join(missing)}, "
                f"but the ONNX graph "
                f"has only {', '.join(runtime.output_names)}."
            )
        return cls(manifest, runtime)

    def scores(self, outputs: dict[str, np.ndarray], index: int) -> dict[str, float]:
        """Each finding's score for image ``index`` of a batch."""
        out = {}
        for finding in self.manifest.findings:
            values = np.asarray(outputs[finding.output])
            out[finding.name] = float(values.reshape(values.shape[0], -1)[index, 0])
        calibration = self.manifest.calibration  # a site's recalibration (radgate models recalibrate)
        if calibration is not None and calibration.finding in out:
            out[calibration.finding] = calibration.apply(out[calibration.finding])
        return out

    def flags(self, scores: dict[str, float]) -> dict[str, bool]:
        """Each operating point's flag: the score of its finding at or above its threshold."""
        return {
            op.name: scores[self.manifest.finding_for(op).name] >= op.threshold
            for op in self.manifest.operating_points
        }

    def explain(
        self, outputs: dict[str, np.ndarray], index: int, tensor: np.ndarray, SOPInstanceUID: str = ""
    ) -> ExplanationMap | None:
        """The explanation map for image ``index`` (CAM from the outputs, or occlusion on ``tensor``)."""
        spec = self.manifest.explanation
        prep = self.manifest.preprocessing
        if spec.method == "cam" and spec.output:
            return cam_map(outputs[spec.output][index], prep.height, prep.width, SOPInstanceUID)
        if spec.method == "occlusion":
            return occlusion_map(
                self.runtime,
                tensor,
                self.manifest.primary.output,
                spec.patch,
                spec.stride,
                SOPInstanceUID=SOPInstanceUID,
            )
        return None
