"""Bring your own model: an ONNX file (or a MONAI bundle, :mod:`radgate.models.monai`) becomes a package.

``radgate models import`` collects the manifest's answers — from flags, from what the ONNX graph and the
bundle already say, and, for the rest, from a form in the terminal — checks them against the graph and
writes a package :func:`radgate.models.add_model` accepts. The graph is checked twice:

1. its declared signature (:func:`read_signature`): the input radgate feeds must exist, be a float tensor of
   rank 4 ``[N, channels, height, width]`` whose fixed dimensions agree with the preprocessing; each output
   the manifest names must exist and be a float tensor;
2. a run on a batch of two blank images of the declared size: the score outputs must give one value per
   image (``[N]`` or ``[N, 1]``), a CAM output a map per image (``[N, h, w]`` or ``[N, 1, h, w]``).

Each mismatch is one line naming the tensor, what the graph has and what was declared (and by which flag).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from radgate.errors import Invalid
from radgate.models.manifest import (
    EXPLANATION_METHODS,
    NORMALISATIONS,
    TASKS,
    Code,
    Explanation,
    Finding,
    IntendedUse,
    Manifest,
    ManifestError,
    ModelInfo,
    OperatingPoint,
    OutputSpec,
    Preprocessing,
    TrainingData,
    Weights,
)
from radgate.models.package import ModelPackage, write_package

__all__ = [
    "ImportAnswers",
    "ModelImportError",
    "ImportPlan",
    "OnnxSignature",
    "Question",
    "TensorInfo",
    "check_signature",
    "finish_import",
    "model_card",
    "plan_onnx_import",
    "read_signature",
]

FLOAT_TYPES = ("tensor(float)", "tensor(float16)", "tensor(double)")


class ModelImportError(Invalid, ValueError):
    """The model file, the bundle or an answer does not fit: one line naming what and why."""


# -- the ONNX graph's signature ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorInfo:
    """One graph input or output: its name, shape (ints, or names/None for free dimensions) and type."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str  # ONNX Runtime's spelling: tensor(float), tensor(int64) ...

    def fixed(self, axis: int) -> int | None:
        """The dimension at ``axis`` when the graph fixes it, else ``None``."""
        if axis >= len(self.shape):
            return None
        dim = self.shape[axis]
        return dim if isinstance(dim, int) and dim > 0 else None

    def describe(self) -> str:
        dims = ", ".join(
            "N" if i == 0 and not isinstance(d, int) else str(d) for i, d in enumerate(self.shape)
        )
        return f"[{dims}] {self.dtype}"


@dataclass(frozen=True)
class OnnxSignature:
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]

    def input(self, name: str) -> TensorInfo | None:
        return next((t for t in self.inputs if t.name == name), None)

    def output(self, name: str) -> TensorInfo | None:
        return next((t for t in self.outputs if t.name == name), None)


def _session(weights: bytes, source: str) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(weights, sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types (InvalidProtobuf, Fail ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelImportError(f"{source} is not an ONNX model ONNX Runtime can load: {first}") from None


def read_signature(weights: bytes, source: str = "the ONNX file") -> OnnxSignature:
    """The graph's inputs and outputs as ONNX Runtime sees them."""
    session = _session(weights, source)

    def info(t: Any) -> TensorInfo:
        return TensorInfo(t.name, tuple(t.shape), t.type)

    return OnnxSignature(
        tuple(info(t) for t in session.get_inputs()), tuple(info(t) for t in session.get_outputs())
    )


# -- the answers ---------------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63]


@dataclass
class ImportAnswers:
    """Everything the manifest needs; ``None`` means "not answered yet" (a flag, the graph or a prompt)."""

    name: str | None = None
    version: str | None = None
    task: str | None = None
    description: str | None = None
    licence: str | None = None
    finding: str | None = None
    code: str | None = None  # SCHEME:VALUE:MEANING, e.g. SCT:36118008:Pneumothorax
    output: str | None = None
    output_kind: str | None = None
    cam_output: str | None = None
    explanation: str | None = None
    modalities: list[str] | None = None
    body_parts: list[str] | None = None
    views: list[str] | None = None
    age_min: float | None = None
    age_max: float | None = None
    sexes: list[str] | None = None
    intended_use: str | None = None
    input: str | None = None
    height: int | None = None
    width: int | None = None
    channels: int | None = None
    normalisation: str | None = None
    mean: float | None = None
    std: float | None = None
    threshold: float | None = None
    operating_point: str | None = None
    sensitivity: float | None = None
    specificity: float | None = None
    training_data: str | None = None
    training_images: int | None = None
    synthetic_training_data: bool | None = None

    def merged(self, defaults: ImportAnswers) -> ImportAnswers:
        """These answers, with ``defaults`` where these have none."""
        return replace(
            self, **{f.name: getattr(defaults, f.name) for f in fields(self) if getattr(self, f.name) is None}
        )


@dataclass(frozen=True)
class Question:
    """One answer still needed: the field, the flag that gives it, the prompt, and what is allowed."""

    key: str
    flag: str
    prompt: str
    kind: str = "text"  # text | int | float | list
    choices: tuple[str, ...] = ()
    default: str | None = None


#: The answers the manifest cannot do without, in the order a form asks for them.
REQUIRED: tuple[Question, ...] = (
    Question("name", "--name", "Model name (lower-case letters, digits and '-', e.g. cxr-ptx)"),
    Question("task", "--task", "Task", choices=TASKS, default="triage"),
    Question("description", "--description", "One-line description"),
    Question("licence", "--licence", "Licence (e.g. Apache-2.0, proprietary)"),
    Question(
        "intended_use", "--intended-use", "Intended use, one sentence (e.g. Adult PA/AP chest radiographs)"
    ),
    Question("modalities", "--modality", "Modalities, comma-separated (e.g. DX,CR)", kind="list"),
    Question("finding", "--finding", "Finding the model scores (e.g. pneumothorax)"),
    Question("code", "--code", "Its code as SCHEME:VALUE:MEANING (e.g. SCT:36118008:Pneumothorax)"),
    Question("output", "--output", "ONNX output carrying the finding's score"),
    Question("height", "--height", "Input height in pixels", kind="int"),
    Question("width", "--width", "Input width in pixels", kind="int"),
    Question(
        "channels", "--channels", "Input channels (1, or 3 for grey replicated)", kind="int", default="1"
    ),
    Question("threshold", "--threshold", "Operating point: the score threshold for a positive", kind="float"),
    Question("training_data", "--training-data", "Training data, one sentence"),
)


#: Asked by the form (never required): an empty answer leaves them out of the manifest.
OPTIONAL: tuple[Question, ...] = (
    Question(
        "body_parts",
        "--body-part",
        "Body parts (BodyPartExamined), comma-separated, empty for any",
        kind="list",
    ),
    Question(
        "views", "--view", "Views (ViewPosition), comma-separated (e.g. PA,AP), empty for any", kind="list"
    ),
    Question("age_min", "--age-min", "Youngest patient age in years, empty for none", kind="float"),
    Question("age_max", "--age-max", "Oldest patient age in years, empty for none", kind="float"),
    Question(
        "sensitivity",
        "--sensitivity",
        "Claimed sensitivity at the operating point, empty if none",
        kind="float",
    ),
    Question(
        "specificity",
        "--specificity",
        "Claimed specificity at the operating point, empty if none",
        kind="float",
    ),
)


def optional_questions(answers: ImportAnswers) -> list[Question]:
    return [q for q in OPTIONAL if getattr(answers, q.key) is None]


def missing_questions(answers: ImportAnswers) -> list[Question]:
    return [q for q in REQUIRED if getattr(answers, q.key) is None]


def parse_answer(question: Question, text: str) -> Any:
    """A typed answer from a form's text (or a flag's), with a one-line error naming the flag."""
    text = text.strip()
    if question.kind == "list":
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise ModelImportError(f"{question.flag} is empty; expected a comma-separated list.")
        return items
    if question.kind in ("int", "float"):
        try:
            return int(text) if question.kind == "int" else float(text)
        except ValueError:
            kind = "an integer" if question.kind == "int" else "a number"
            raise ModelImportError(f"{question.flag} is {text!r}; expected {kind}.") from None
    if question.choices and text not in question.choices:
        raise ModelImportError(f"{question.flag} is {text!r}; expected one of {', '.join(question.choices)}.")
    return text


def defaults_from_signature(sig: OnnxSignature) -> ImportAnswers:
    """What the graph says by itself: the input when there is one, its fixed size, the outputs by name."""
    out = ImportAnswers()
    if len(sig.inputs) == 1:
        image = sig.inputs[0]
        out.input = image.name
        out.channels, out.height, out.width = image.fixed(1), image.fixed(2), image.fixed(3)
    floats = [t.name for t in sig.outputs if t.dtype in FLOAT_TYPES]
    if "cam" in floats:
        out.cam_output = "cam"
    scores = [n for n in floats if n != out.cam_output]
    if len(scores) == 1:
        out.output = scores[0]
    return out


# -- manifest from answers -----------------------------------------------------------------------------------


def _code(text: str) -> Code:
    parts = text.split(":", 2)
    if len(parts) != 3 or not all(p.strip() for p in parts):
        raise ModelImportError(
            f"--code is {text!r}; expected SCHEME:VALUE:MEANING, e.g. SCT:36118008:Pneumothorax."
        )
    return Code(*(p.strip() for p in parts))


def build_manifest(answers: ImportAnswers, weights_file: str = "model.onnx") -> Manifest:
    """The manifest the answers describe (every required answer present; see :func:`missing_questions`)."""
    missing = missing_questions(answers)
    if missing:
        raise ModelImportError(
            "missing " + ", ".join(q.flag for q in missing) + "; give them as flags or answer the form "
            "(run in a terminal, or with --interactive)."
        )
    a = answers
    assert a.name and a.task and a.description and a.licence and a.finding and a.code and a.output
    assert a.intended_use and a.modalities and a.training_data and a.threshold is not None
    assert a.height is not None and a.width is not None and a.channels is not None
    try:
        outputs = {a.output: OutputSpec(a.output, a.output_kind or "probability", f"score of {a.finding}")}
        explanation_method = a.explanation or ("cam" if a.cam_output else "occlusion")
        if explanation_method not in EXPLANATION_METHODS:
            raise ModelImportError(
                f"--explanation is {explanation_method!r}; expected one of {', '.join(EXPLANATION_METHODS)}."
            )
        if explanation_method == "cam":
            if not a.cam_output:
                raise ModelImportError(
                    "--explanation cam needs --cam-output NAME (the ONNX output of the map)."
                )
            outputs[a.cam_output] = OutputSpec(a.cam_output, "class_activation_map", "class activation map")
        if a.normalisation is not None and a.normalisation not in NORMALISATIONS:
            raise ModelImportError(
                f"--normalisation is {a.normalisation!r}; expected one of {', '.join(NORMALISATIONS)}."
            )
        return Manifest(
            model=ModelInfo(
                name=a.name,
                version=a.version or "1.0.0",
                task=a.task,
                description=a.description,
                licence=a.licence,
                synthetic_training_data=bool(a.synthetic_training_data),
            ),
            findings=(Finding(name=a.finding, output=a.output, code=_code(a.code)),),
            intended_use=IntendedUse(
                modalities=tuple(a.modalities),
                summary=a.intended_use,
                body_parts=tuple(a.body_parts or ()),
                views=tuple(a.views or ()),
                age_min=a.age_min,
                age_max=a.age_max,
                sexes=tuple(a.sexes or ()),
            ),
            preprocessing=Preprocessing(
                height=a.height,
                width=a.width,
                channels=a.channels,
                input=a.input or "image",
                normalisation=a.normalisation or "none",
                mean=a.mean if a.mean is not None else 0.0,
                std=a.std if a.std is not None else 1.0,
            ),
            outputs=outputs,
            operating_points=(
                OperatingPoint(
                    name=a.operating_point or "default",
                    threshold=a.threshold,
                    sensitivity=a.sensitivity,
                    specificity=a.specificity,
                ),
            ),
            explanation=Explanation(
                explanation_method, a.cam_output if explanation_method == "cam" else None
            ),
            weights=Weights(weights_file, "0" * 64),
            training_data=TrainingData(summary=a.training_data, n_images=a.training_images or 0),
        )
    except ManifestError as exc:
        raise ModelImportError(_as_flags(str(exc))) from None


#: Manifest keys as the flags that set them, so an error names what the user typed.
_FLAG_OF = {
    "model.name": "--name",
    "model.version": "--version",
    "model.task": "--task",
    "intended_use.age_min": "--age-min",
    "intended_use.age_max": "--age-max",
    "intended_use.sexes": "--sex",
    "preprocessing.height": "--height",
    "preprocessing.width": "--width",
    "preprocessing.channels": "--channels",
    "preprocessing.std": "--std",
    "operating_points": "--threshold",
    "findings": "--finding/--output",
}


def _as_flags(message: str) -> str:
    for key, flag in _FLAG_OF.items():
        if f"'{key}" in message:
            return f"{flag}: {message}"
    return message


# -- the graph against the answers ---------------------------------------------------------------------------


def check_signature(
    manifest: Manifest, sig: OnnxSignature, weights: bytes, source: str = "the model"
) -> None:
    """Check the graph's inputs and outputs against the manifest (module docstring); one line per mismatch."""
    prep = manifest.preprocessing
    names = ", ".join(repr(t.name) for t in sig.inputs)
    image = sig.input(prep.input)
    if image is None:
        raise ModelImportError(f"{source} has no input {prep.input!r} (--input); it has {names}.")
    others = [t.name for t in sig.inputs if t.name != prep.input]
    if others:
        raise ModelImportError(
            f"{source} has further inputs {', '.join(map(repr, others))}; radgate feeds one image tensor."
        )
    if image.dtype != "tensor(float)":
        raise ModelImportError(
            f"{source} input {image.name!r} is {image.dtype}; radgate feeds tensor(float) (float32)."
        )
    if len(image.shape) != 4:
        raise ModelImportError(
            f"{source} input {image.name!r} has shape {image.describe()}; expected rank 4 "
            f"[N, channels, height, width]."
        )
    for axis, value, flag in (
        (1, prep.channels, "--channels"),
        (2, prep.height, "--height"),
        (3, prep.width, "--width"),
    ):
        fixed = image.fixed(axis)
        if fixed is not None and fixed != value:
            raise ModelImportError(
                f"{source} input {image.name!r} has shape {image.describe()}: dimension {axis} is {fixed}, "
                f"but {flag} is {value}."
            )
    declared = [(f.output, "score") for f in manifest.findings]
    if manifest.explanation.method == "cam" and manifest.explanation.output:
        declared.append((manifest.explanation.output, "cam"))
    outputs = ", ".join(repr(t.name) for t in sig.outputs)
    for name, role in declared:
        tensor = sig.output(name)
        flag = "--output" if role == "score" else "--cam-output"
        if tensor is None:
            raise ModelImportError(f"{source} has no output {name!r} ({flag}); it has {outputs}.")
        if tensor.dtype not in FLOAT_TYPES:
            raise ModelImportError(
                f"{source} output {name!r} is {tensor.dtype}; a {role} output must be a float tensor."
            )
    batch = np.zeros((2, prep.channels, prep.height, prep.width), np.float32)
    if image.fixed(0) is not None:
        batch = batch[: image.fixed(0)]
    session = _session(weights, source)
    try:
        values = dict(zip([t.name for t in sig.outputs], session.run(None, {image.name: batch}), strict=True))
    except Exception as exc:  # onnxruntime's own exception types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelImportError(
            f"{source} fails on a blank batch of shape {list(batch.shape)} "
            f"(from --channels/--height/--width): "
            f"{first}"
        ) from None
    n = batch.shape[0]
    for name, role in declared:
        shape = tuple(np.asarray(values[name]).shape)
        ok = (
            shape in ((n,), (n, 1))
            if role == "score"
            else (len(shape) == 3 or (len(shape) == 4 and shape[1] == 1))
        )
        if not ok or shape[0] != n:
            expected = (
                f"[{n}] or [{n}, 1], one score per image"
                if role == "score"
                else f"[{n}, h, w], a map per image"
            )
            raise ModelImportError(
                f"{source} output {name!r} gives shape {list(shape)} for {n} images; expected {expected}."
            )
        if not np.all(np.isfinite(values[name])):
            raise ModelImportError(f"{source} output {name!r} is not finite on a blank image.")


# -- the plan and the package --------------------------------------------------------------------------------


@dataclass
class ImportPlan:
    """An import under way: the weights, their signature, the answers so far and the model card's notes."""

    weights: bytes
    signature: OnnxSignature
    answers: ImportAnswers
    source: str
    notes: list[str] = field(default_factory=list)
    suggestions: dict[str, str] = field(default_factory=dict)  # a form's defaults, never used unasked

    @property
    def missing(self) -> list[Question]:
        return missing_questions(self.answers)


def plan_onnx_import(path: Path, given: ImportAnswers) -> ImportPlan:
    """Read an ONNX file and combine the answers given with what its graph says."""
    path = Path(path)
    try:
        weights = path.read_bytes()
    except OSError as exc:
        raise ModelImportError(f"Cannot read {str(path)!r}: {exc.strerror or exc}.") from None
    sig = read_signature(weights, str(path))
    defaults = defaults_from_signature(sig)
    suggestions = {"name": _slug(path.stem)} if _slug(path.stem) else {}
    return ImportPlan(
        weights,
        sig,
        given.merged(defaults),
        str(path),
        [f"Imported from ONNX file `{path.name}`."],
        suggestions,
    )


def finish_import(plan: ImportPlan, dest: Path, as_zip: bool = False) -> ModelPackage:
    """Build the manifest, check the graph against it and write the package to ``dest``."""
    manifest = build_manifest(plan.answers)
    check_signature(manifest, plan.signature, plan.weights, plan.source)
    dest = Path(dest)
    if dest.exists() and (dest.is_file() or any(dest.iterdir())):
        raise ModelImportError(f"{str(dest)!r} already exists and is not empty; choose another --out.")
    return write_package(dest, manifest, plan.weights, model_card(manifest, plan.notes), as_zip=as_zip)


def model_card(manifest: Manifest, notes: Sequence[str] = ()) -> str:
    """A first ``MODEL_CARD.md`` from the manifest; the vendor's own card should replace it."""
    m = manifest
    op = m.operating_points[0]
    claimed = ", ".join(
        f"{k} {v:.3f}"
        for k, v in (("sensitivity", op.sensitivity), ("specificity", op.specificity))
        if v is not None
    )
    u = m.intended_use
    lines = [
        f"# {m.name} {m.version}",
        "",
        m.model.description,
        "",
        "## Intended use",
        "",
        u.summary,
        "",
        f"- Task: {m.model.task}",
        f"- Modalities: {', '.join(u.modalities)}",
    ]
    for label, values in (("Body parts", u.body_parts), ("Views", u.views), ("Sexes", u.sexes)):
        if values:
            lines.append(f"- {label}: {', '.join(values)}")
    if u.age_min is not None or u.age_max is not None:
        low, high = u.age_min if u.age_min is not None else 0, u.age_max if u.age_max is not None else 150
        lines.append(f"- Age: {low:g} to {high:g} years")
    lines += [
        "",
        "## Findings and operating point",
        "",
        *(
            f"- {f.name}: {f.code.meaning} ({f.code.scheme} {f.code.value}), ONNX output `{f.output}`"
            for f in m.findings
        ),
        f"- Operating point {op.name!r}: threshold {op.threshold:g}"
        + (f" (claimed {claimed})" if claimed else ""),
        "",
        "## Input",
        "",
        f"`{m.preprocessing.input}`: [N, {m.preprocessing.channels}, {m.preprocessing.height}, "
        f"{m.preprocessing.width}] float32, rendered by radgate (Modality LUT, first VOI window, MONOCHROME1 "
        f"inverted, values in [0, 1]), normalisation {m.preprocessing.normalisation}.",
        "",
        "## Training data",
        "",
        m.training_data.summary,
        "",
        "## Provenance",
        "",
        *notes,
        "This card was written by `radgate models import` from the answers given; it states claims, not a "
        "validation. Validate the model on local data (`radgate validate`) before any use.",
        "",
    ]
    return "\n".join(lines)


def answers_from_mapping(values: Mapping[str, Any]) -> ImportAnswers:
    """:class:`ImportAnswers` from keyword values (the CLI's flags), ignoring ``None``."""
    known = {f.name for f in fields(ImportAnswers)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ModelImportError(f"unknown import answer(s) {', '.join(unknown)}.")
    return ImportAnswers(**{k: v for k, v in values.items() if v is not None})
