"""Model runtimes: the :class:`ModelRuntime` interface and its built-in ONNX Runtime implementation.

ONNX Runtime runs on the CPU everywhere and on the GPU through the CUDA execution provider when the
installed build offers it (``onnxruntime.get_available_providers()``); the providers asked for that are not
available are skipped, and the CPU provider is always last. Batches larger than ``batch_size`` (or than a
model's fixed batch dimension) are split.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import onnxruntime as ort

from radgate.errors import Invalid

__all__ = ["ModelRuntime", "OnnxRuntime", "ModelLoadError", "RuntimeOptions", "available_providers"]

log = logging.getLogger(__name__)


class ModelLoadError(Invalid, ValueError):
    """The weights cannot be loaded, or the model does not have the inputs/outputs its manifest declares."""


@dataclass(frozen=True)
class RuntimeOptions:
    """Execution settings (``[inference]`` in the config)."""

    providers: tuple[str, ...] = ("CUDAExecutionProvider", "CPUExecutionProvider")
    intra_op_threads: int = 2
    inter_op_threads: int = 1
    batch_size: int = 8
    # Off: ONNX Runtime's idle threads sleep instead of spinning, leaving the cores to decoding and
    # preprocessing in the same process (they run between inferences, not beside them).
    allow_spinning: bool = False

    def __post_init__(self) -> None:
        if self.intra_op_threads < 0 or self.inter_op_threads < 0:
            raise ValueError(
                f"thread counts must be >= 0 (0: ONNX Runtime decides), got intra={self.intra_op_threads}, "
                f"inter={self.inter_op_threads}."
            )
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}.")

    @classmethod
    def from_settings(cls, inference: Any) -> RuntimeOptions:
        """From :class:`radgate.config.InferenceSettings`."""
        return cls(
            providers=tuple(inference.providers),
            intra_op_threads=int(inference.intra_op_threads),
            batch_size=int(inference.batch_size),
            allow_spinning=bool(getattr(inference, "allow_spinning", False)),
        )


def available_providers(wanted: Sequence[str]) -> list[str]:
    """``wanted`` that this ONNX Runtime build offers, in order, with the CPU provider always present."""
    have = set(ort.get_available_providers())
    chosen = [p for p in wanted if p in have]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


@runtime_checkable
class ModelRuntime(Protocol):
    """Runs a model on a float32 batch ``[N, C, H, W]`` and returns its outputs by name, each ``[N, ...]``."""

    @property
    def output_names(self) -> tuple[str, ...]: ...

    @property
    def providers(self) -> tuple[str, ...]: ...

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]: ...


class OnnxRuntime:
    """An ONNX Runtime inference session over in-memory weights (already hash-checked by the package)."""

    def __init__(
        self,
        weights: bytes,
        options: RuntimeOptions | None = None,
        input_name: str | None = None,
        label: str = "model",
    ) -> None:
        self.options = options or RuntimeOptions()
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.options.intra_op_threads
        so.inter_op_num_threads = self.options.inter_op_threads
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        spinning = "1" if self.options.allow_spinning else "0"
        so.add_session_config_entry("session.intra_op.allow_spinning", spinning)
        try:
            self.session = ort.InferenceSession(
                weights, sess_options=so, providers=available_providers(self.options.providers)
            )
        except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidGraph ...)
            raise ModelLoadError(f"{label}: ONNX Runtime cannot load the weights: {exc}") from exc
        inputs = self.session.get_inputs()
        names = [i.name for i in inputs]
        if input_name is None:
            if len(inputs) != 1:
                raise ModelLoadError(
                    f"{label}: the model has inputs {names}; name one in preprocessing.input."
                )
            input_name = names[0]
        if input_name not in names:
            raise ModelLoadError(f"{label}: the model has no input {input_name!r}; it has {names}.")
        self.input_name = input_name
        shape = next(i.shape for i in inputs if i.name == input_name)
        fixed = shape[0] if shape and isinstance(shape[0], int) and shape[0] > 0 else None
        self.max_batch = min(fixed, self.options.batch_size) if fixed else self.options.batch_size
        self._output_names = tuple(o.name for o in self.session.get_outputs())
        log.info("%s: ONNX Runtime on %s, max batch %d", label, ", ".join(self.providers), self.max_batch)

    @property
    def output_names(self) -> tuple[str, ...]:
        return self._output_names

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(self.session.get_providers())

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in self._output_names}
        for start in range(0, len(batch), self.max_batch):
            outputs = self.session.run(None, {self.input_name: batch[start : start + self.max_batch]})
            for name, value in zip(self._output_names, outputs, strict=True):
                parts[name].append(np.asarray(value))
        return {name: np.concatenate(values, axis=0) for name, values in parts.items() if values}
