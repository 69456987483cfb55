"""The model package manifest (``manifest.toml``): what a model is, what it is for, and how to feed it.

The format is documented in ``docs/model-package.md``. The schema is declared once, as pydantic v2
dataclasses with ``extra="forbid"``: their fields are the manifest's keys (an unknown key is refused), their
types are checked strictly (``height = "512"`` is an error, not a conversion) and each class's
``__post_init__`` adds the rules a type cannot say. Every class is valid once its constructor returns; a
wrong value raises :class:`ManifestError`, one line naming the key, the value received and what was
expected. Reading is strict on purpose: a manifest is written by a vendor or a training script once and read
by every installation, so a typo must fail at ``radgate models add``, not at 3 a.m. during inference.

Codes for findings follow the coded concept triplet of PS3.3 8.8 (Code Value, Coding Scheme Designator,
Code Meaning) so that the results writer can put them into a TID 1500 SR unchanged.
"""

from __future__ import annotations

import functools
import math
import re
import tomllib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
)
from pydantic.dataclasses import dataclass

from radgate.errors import Invalid
from radgate.models.versions import VERSION_RE

__all__ = [
    "SCHEMA_VERSION",
    "Calibration",
    "Code",
    "Explanation",
    "Finding",
    "IntendedUse",
    "Manifest",
    "ManifestError",
    "ModelInfo",
    "OperatingPoint",
    "OutputSpec",
    "Preprocessing",
    "TrainingData",
    "Weights",
]

SCHEMA_VERSION = 1

TASKS = ("triage", "diagnostic")
SEXES = ("F", "M", "O")
VOI_METHODS = ("first_window",)
MONOCHROME1_METHODS = ("invert",)
NORMALISATIONS = ("none", "zscore")
OUTPUT_KINDS = ("probability", "score", "class_activation_map")
EXPLANATION_METHODS = ("cam", "occlusion", "none")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")

#: Every schema class: frozen, unknown keys refused, NaN and infinity refused.
_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)


class ManifestError(Invalid, ValueError):
    """A manifest key is missing, has the wrong type or a value outside what is allowed.

    ``key`` (relative to the table that raised it), ``value`` and ``expected`` are kept when known, so a
    complaint raised inside a nested table can be re-keyed to its full path (``findings[0].code.value``).
    """

    def __init__(
        self, message: str, *, key: str | None = None, value: Any = None, expected: str | None = None
    ) -> None:
        super().__init__(message)
        self.key, self.value, self.expected = key, value, expected


# -- small checks: each names the key, the value and what was expected --------------------------------------


def _fail(key: str, value: Any, expected: str) -> ManifestError:
    return ManifestError(
        f"manifest key {key!r} is {value!r}; expected {expected}.", key=key, value=value, expected=expected
    )


def _choice(key: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise _fail(key, value, "one of " + ", ".join(repr(a) for a in allowed))
    return str(value)


def _in_range(key: str, value: float, lo: float | None = None, hi: float | None = None) -> float:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        kind = "an integer" if isinstance(value, int) else "a number"
        raise _fail(key, value, f"{kind} in [{lo}, {hi}]")
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise _fail("", value, "a non-empty string")
    return value


#: A string with something in it (``""`` and ``"  "`` are refused).
Text = Annotated[StrictStr, AfterValidator(_non_empty)]
#: A list of such strings (TOML arrays arrive as lists; they are kept as tuples).
TextList = tuple[Text, ...]
#: A number: an integer or a float, never a bool or a string, never NaN.
Number = StrictFloat


def _text_from_number(value: Any) -> Any:
    """TOML numbers where a text is meant (``version = 1.0``) are refused with a hint, not converted."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise _fail("", value, 'a string in quotes, e.g. "1.0.0"')
    return value


def _raise_manifest_errors(cls: type, section: str) -> None:
    """Make ``cls(...)`` raise :class:`ManifestError` (keys under ``section``), not pydantic's error."""
    init = cls.__dict__["__init__"]

    names = list(getattr(cls, "__pydantic_fields__", {}))

    @functools.wraps(init)
    def init_raising_manifest_errors(self: Any, *args: Any, **kwargs: Any) -> None:
        # Positional arguments by name, so that an error names the key, not the argument's position.
        kwargs = {**dict(zip(names, args, strict=False)), **kwargs} if len(args) <= len(names) else kwargs
        try:
            init(self, *args[len(names) :] if len(args) > len(names) else (), **kwargs)
        except ValidationError as exc:
            raise ManifestError(_explain(exc, cls, section)) from None

    setattr(cls, "__init__", init_raising_manifest_errors)  # noqa: B010 - replacing a method on purpose


# -- the parts ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, config=_CONFIG)
class Code:
    """A coded concept (PS3.3 8.8): ``value`` in coding scheme ``scheme`` (SCT, RADLEX, DCM ...)."""

    scheme: Text
    value: Text
    meaning: Text

    def __post_init__(self) -> None:
        if len(self.value) > 64:
            raise _fail("value", self.value, "at most 64 characters (PS3.3 8.1 Code Value, VR SH/UC)")

    @classmethod
    def from_dict(cls, key: str, raw: Any) -> Code:
        return _validate(Code, raw, key)

    def to_dict(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "value": self.value, "meaning": self.meaning}


@dataclass(frozen=True, config=_CONFIG)
class ModelInfo:
    """``[model]``: identity, task kind and licence."""

    name: StrictStr
    version: StrictStr
    task: StrictStr
    description: Text
    licence: Text
    synthetic_training_data: StrictBool = False

    def __post_init__(self) -> None:
        if not NAME_RE.match(self.name):
            raise _fail("name", self.name, "lower-case letters, digits and '-' (at most 63), e.g. 'cxr-ptx'")
        if not VERSION_RE.match(self.version):
            raise _fail("version", self.version, "a semantic version such as '1.0.0'")
        _choice("task", self.task, TASKS)


@dataclass(frozen=True, config=_CONFIG)
class Finding:
    """``[[findings]]``: one finding the model scores, the ONNX output carrying its score, and its codes."""

    name: Text
    output: Text
    code: Code
    site: Code | None = None
    radlex: Code | None = None


@dataclass(frozen=True, config=_CONFIG)
class IntendedUse:
    """``[intended_use]``: the population the model was built for; routing rules derive from it."""

    modalities: Annotated[TextList, Field(min_length=1)]
    summary: Text
    sop_classes: TextList = ()
    body_parts: TextList = ()
    views: TextList = ()
    age_min: Number | None = None
    age_max: Number | None = None
    sexes: TextList = ()

    def __post_init__(self) -> None:
        for i, uid in enumerate(self.sop_classes):
            if not UID_RE.match(uid) or len(uid) > 64:
                raise _fail(f"sop_classes[{i}]", uid, "a DICOM UID (digits and dots, <= 64 chars)")
        for i, sex in enumerate(self.sexes):
            _choice(f"sexes[{i}]", sex, SEXES)
        if self.age_min is not None:
            _in_range("age_min", self.age_min, 0, 150)
        if self.age_max is not None:
            _in_range("age_max", self.age_max, 0, 150)
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise _fail("age_min", self.age_min, f"at most age_max ({self.age_max})")


@dataclass(frozen=True, config=_CONFIG)
class Preprocessing:
    """``[preprocessing]``: how a DICOM image becomes the model's input tensor ``[N, channels, H, W]``.

    ``voi = "first_window"``: Modality LUT, then the first VOI LUT Sequence item, else the first Window
    Center/Width pair, else the image's min/max (PS3.3 C.11.2); ``monochrome1 = "invert"``: MONOCHROME1 is
    inverted so higher always means brighter. Both are what :func:`radgate.imaging.to_display` does.
    """

    height: StrictInt
    width: StrictInt
    channels: StrictInt = 1
    input: Text = "image"
    voi: StrictStr = "first_window"
    monochrome1: StrictStr = "invert"
    normalisation: StrictStr = "none"
    mean: Number = 0.0
    std: Number = 1.0

    def __post_init__(self) -> None:
        _in_range("height", self.height, 8, 4096)
        _in_range("width", self.width, 8, 4096)
        if self.channels not in (1, 3):
            raise _fail("channels", self.channels, "1, or 3 (grey replicated)")
        _choice("voi", self.voi, VOI_METHODS)
        _choice("monochrome1", self.monochrome1, MONOCHROME1_METHODS)
        _choice("normalisation", self.normalisation, NORMALISATIONS)
        if self.std <= 0:
            raise _fail("std", self.std, "a number above 0")


@dataclass(frozen=True, config=_CONFIG)
class OutputSpec:
    """``[outputs.NAME]``: one ONNX output, what it means and whether it is a calibrated probability.

    ``name`` is the table's name, not a key inside it; ``kind`` defaults to ``class_activation_map`` for an
    output named ``cam`` and to ``probability`` otherwise.
    """

    name: Text
    kind: StrictStr = "probability"
    meaning: StrictStr = ""
    calibrated: StrictBool = False

    def __post_init__(self) -> None:
        _choice("kind", self.kind, OUTPUT_KINDS)


@dataclass(frozen=True, config=_CONFIG)
class OperatingPoint:
    """``[[operating_points]]``: a named threshold on a finding's score, with the claimed performance."""

    name: Text
    threshold: Number
    sensitivity: Number | None = None
    specificity: Number | None = None
    finding: Text | None = None

    def __post_init__(self) -> None:
        if self.sensitivity is not None:
            _in_range("sensitivity", self.sensitivity, 0, 1)
        if self.specificity is not None:
            _in_range("specificity", self.specificity, 0, 1)


@dataclass(frozen=True, config=_CONFIG)
class Explanation:
    """``[explanation]``: where the explanation map comes from.

    ``cam``: the ONNX output named ``output`` (kind ``class_activation_map``); ``occlusion``: occlusion
    sensitivity (Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks", ECCV) with a
    grey ``patch`` x ``patch`` square moved by ``stride``; ``none``: no map. Either way a map is a rough
    guide to where the model looked, not proof of a finding.
    """

    method: StrictStr
    output: StrictStr | None = None
    patch: StrictInt = 32
    stride: StrictInt = 16

    def __post_init__(self) -> None:
        _choice("method", self.method, EXPLANATION_METHODS)
        if self.method == "cam" and not self.output:
            raise _fail("output", self.output, "the name of the CAM output when method = 'cam'")
        _in_range("patch", self.patch, 2, 1024)
        _in_range("stride", self.stride, 1, 1024)


@dataclass(frozen=True, config=_CONFIG)
class TrainingData:
    """``[training_data]``: a summary of what the model learnt from."""

    summary: Text
    n_images: Annotated[StrictInt, Field(ge=0)] = 0
    profiles: TextList = ()


@dataclass(frozen=True, config=_CONFIG)
class Weights:
    """``[weights]``: the ONNX file inside the package and its SHA-256 (lower-case hex)."""

    file: Text
    sha256: StrictStr

    def __post_init__(self) -> None:
        if self.file.startswith("/") or ".." in self.file.replace("\\", "/").split("/"):
            raise _fail("file", self.file, "a relative path inside the package")
        if not SHA256_RE.match(self.sha256):
            raise _fail("sha256", self.sha256, "64 lower-case hexadecimal digits (SHA-256)")


@dataclass(frozen=True, config=_CONFIG)
class Calibration:
    """``[calibration]`` (optional; written by ``radgate models recalibrate``): a site's map from the raw
    score of ``finding`` to a calibrated probability, applied by the runtime after the model runs.

    ``platt``: :math:`1/(1 + e^{-(a f + b)})`, :math:`f` the score (or its logit when ``on_logit``);
    ``isotonic``: linear interpolation through the knots ``x`` → ``y``, flat outside.
    """

    method: Literal["platt", "isotonic"]
    finding: Text
    site: Text
    slope: Number = 1.0
    intercept: Number = 0.0
    on_logit: StrictBool = False
    x: tuple[Number, ...] = ()
    y: tuple[Number, ...] = ()

    def __post_init__(self) -> None:
        if self.method == "isotonic" and (len(self.x) < 1 or len(self.x) != len(self.y)):
            raise _fail("x", list(self.x), "as many knots as calibration.y, at least one")
        if list(self.x) != sorted(self.x):
            raise _fail("x", list(self.x), "ascending knots")

    def apply(self, score: float) -> float:
        if self.method == "isotonic":
            xs, ys = self.x, self.y
            if score <= xs[0]:
                return float(ys[0])
            if score >= xs[-1]:
                return float(ys[-1])
            lo, hi = 0, len(xs) - 1
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if xs[mid] <= score else (lo, mid)
            t = (score - xs[lo]) / (xs[hi] - xs[lo]) if xs[hi] > xs[lo] else 0.0
            return float(ys[lo] + t * (ys[hi] - ys[lo]))
        f = score
        if self.on_logit:
            q = min(max(score, 1e-7), 1 - 1e-7)
            f = math.log(q / (1 - q))
        return 1.0 / (1.0 + math.exp(-(self.slope * f + self.intercept)))

    @classmethod
    def from_dict(cls, raw: Any) -> Calibration:
        return _validate(Calibration, raw, "calibration")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "finding": self.finding, "site": self.site}
        if self.method == "platt":
            out |= {"slope": self.slope, "intercept": self.intercept, "on_logit": self.on_logit}
        else:
            out |= {"x": list(self.x), "y": list(self.y)}
        return out


def _named_outputs(value: Any) -> Any:
    """``[outputs.NAME]`` tables get their ``name`` from the table's name, and a default ``kind``."""
    if not isinstance(value, Mapping):
        return value
    named: dict[Any, Any] = {}
    for name, spec in value.items():
        if isinstance(spec, Mapping):
            if "name" in spec:
                raise _fail(f"{name}.name", spec["name"], "no 'name' key: the table's name names the output")
            default_kind = "class_activation_map" if name == "cam" else "probability"
            spec = {"name": name, "kind": default_kind, **spec}
        named[name] = spec
    return named


# -- the manifest -------------------------------------------------------------------------------------------


@dataclass(frozen=True, config=_CONFIG)
class Manifest:
    """A complete, checked ``manifest.toml``: the top-level tables are its fields."""

    model: ModelInfo
    findings: tuple[Finding, ...]
    intended_use: IntendedUse
    preprocessing: Preprocessing
    outputs: Annotated[Mapping[str, OutputSpec], BeforeValidator(_named_outputs)]
    operating_points: tuple[OperatingPoint, ...]
    explanation: Explanation
    weights: Weights
    training_data: TrainingData
    validated_subgroups: Mapping[str, Annotated[TextList, Field(min_length=1)]] = field(default_factory=dict)
    schema_version: StrictInt = SCHEMA_VERSION
    calibration: Calibration | None = None  # a site's recalibration map (radgate models recalibrate)

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise _fail("schema_version", self.schema_version, f"{SCHEMA_VERSION}")
        if not self.findings:
            raise _fail("findings", [], "at least one [[findings]] table")
        if not self.operating_points:
            raise _fail("operating_points", [], "at least one [[operating_points]] table")
        for finding in self.findings:
            if finding.output not in self.outputs:
                raise _fail(
                    f"findings[{finding.name}].output",
                    finding.output,
                    "the name of an [outputs.NAME] table (" + ", ".join(self.outputs) + ")",
                )
            if self.outputs[finding.output].kind == "class_activation_map":
                raise _fail(
                    f"findings[{finding.name}].output", finding.output, "a probability or score output"
                )
        names = [op.name for op in self.operating_points]
        if len(set(names)) != len(names):
            raise _fail("operating_points.name", names, "unique names")
        finding_names = [f.name for f in self.findings]
        for op in self.operating_points:
            if op.finding is not None and op.finding not in finding_names:
                raise _fail(
                    f"operating_points[{op.name}].finding", op.finding, "one of " + ", ".join(finding_names)
                )
            output = self.outputs[self.finding_for(op).output]
            if output.kind == "probability":
                _in_range(f"operating_points[{op.name}].threshold", op.threshold, 0, 1)
        if self.calibration is not None and self.calibration.finding not in finding_names:
            raise _fail("calibration.finding", self.calibration.finding, "one of " + ", ".join(finding_names))
        if self.explanation.method == "cam":
            out = self.outputs.get(self.explanation.output or "")
            if out is None or out.kind != "class_activation_map":
                raise _fail(
                    "explanation.output",
                    self.explanation.output,
                    "an [outputs.NAME] table with kind = 'class_activation_map'",
                )

    # -- convenience ------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def primary(self) -> Finding:
        """The first finding: its score is the series score in exports and worklists."""
        return self.findings[0]

    def finding_for(self, op: OperatingPoint) -> Finding:
        for finding in self.findings:
            if finding.name == (op.finding or self.primary.name):
                return finding
        raise KeyError(op.finding)

    # -- reading ----------------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | str) -> Manifest:
        """Read and check a ``manifest.toml`` file; an error names the file and the key."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(f"Cannot read manifest {str(path)!r}: {exc}") from exc
        return cls.from_toml(text, source=str(path))

    @classmethod
    def from_toml(cls, text: str, source: str | None = None) -> Manifest:
        """Parse and check TOML text; ``source`` (a file name) is named in every error.

        The same text is parsed once (:func:`_parse_toml`): a manifest is frozen, and the registry's row is
        read on every series' path (routing, then the engine), where parsing and checking it cost about
        2 ms each time."""
        where = f"{source}: " if source else ""
        try:
            return _parse_toml(text)
        except tomllib.TOMLDecodeError as exc:
            raise ManifestError(f"{where}manifest.toml is not valid TOML: {exc}") from exc
        except ManifestError as exc:
            if not source:
                raise
            raise ManifestError(
                f"{where}{exc}", key=exc.key, value=exc.value, expected=exc.expected
            ) from None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Manifest:
        """Check TOML data. Defaults that depend on other tables are filled in first: ``weights.file``
        (``model.onnx``) and ``[explanation]`` (the CAM output if there is one, else occlusion)."""
        if not isinstance(raw, Mapping):
            raise _fail("", raw, "a TOML document of tables")
        if "schema_version" not in raw:
            raise ManifestError("manifest key 'schema_version' is missing.", key="schema_version")
        values = dict(raw)
        weights = values.get("weights")
        if isinstance(weights, Mapping) and "file" not in weights:
            values["weights"] = {"file": "model.onnx", **weights}
        if "explanation" not in values:
            outputs = values.get("outputs")
            cams = []
            if isinstance(outputs, Mapping):
                cams = [
                    name
                    for name, spec in outputs.items()
                    if isinstance(spec, Mapping)
                    and spec.get("kind", "class_activation_map" if name == "cam" else "")
                    == "class_activation_map"
                ]
            values["explanation"] = {"method": "cam", "output": cams[0]} if cams else {"method": "occlusion"}
        return _validate(Manifest, values, "")

    # -- writing ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The manifest as plain TOML-able data; ``Manifest.from_dict(m.to_dict()) == m``."""
        u = self.intended_use
        intended: dict[str, Any] = {"modalities": list(u.modalities)}
        for key in ("sop_classes", "body_parts", "views", "sexes"):
            if getattr(u, key):
                intended[key] = list(getattr(u, key))
        if u.age_min is not None:
            intended["age_min"] = u.age_min
        if u.age_max is not None:
            intended["age_max"] = u.age_max
        intended["summary"] = u.summary

        findings = []
        for f in self.findings:
            item: dict[str, Any] = {"name": f.name, "output": f.output, "code": f.code.to_dict()}
            if f.site is not None:
                item["site"] = f.site.to_dict()
            if f.radlex is not None:
                item["radlex"] = f.radlex.to_dict()
            findings.append(item)

        ops = []
        for op in self.operating_points:
            item = {"name": op.name, "threshold": op.threshold}
            for key in ("sensitivity", "specificity", "finding"):
                if getattr(op, key) is not None:
                    item[key] = getattr(op, key)
            ops.append(item)

        explanation: dict[str, Any] = {"method": self.explanation.method}
        if self.explanation.output:
            explanation["output"] = self.explanation.output
        explanation["patch"] = self.explanation.patch
        explanation["stride"] = self.explanation.stride

        p = self.preprocessing
        return {
            "schema_version": self.schema_version,
            "model": {
                "name": self.model.name,
                "version": self.model.version,
                "task": self.model.task,
                "description": self.model.description,
                "synthetic_training_data": self.model.synthetic_training_data,
                "licence": self.model.licence,
            },
            "findings": findings,
            "intended_use": intended,
            "preprocessing": {
                "height": p.height,
                "width": p.width,
                "channels": p.channels,
                "input": p.input,
                "voi": p.voi,
                "monochrome1": p.monochrome1,
                "normalisation": p.normalisation,
                "mean": p.mean,
                "std": p.std,
            },
            "outputs": {
                name: {"kind": s.kind, "meaning": s.meaning, "calibrated": s.calibrated}
                for name, s in self.outputs.items()
            },
            "operating_points": ops,
            "explanation": explanation,
            "validated_subgroups": {k: list(v) for k, v in self.validated_subgroups.items()},
            "training_data": {
                "summary": self.training_data.summary,
                "n_images": self.training_data.n_images,
                "profiles": list(self.training_data.profiles),
            },
            "weights": {"file": self.weights.file, "sha256": self.weights.sha256},
        } | ({"calibration": self.calibration.to_dict()} if self.calibration is not None else {})

    def to_toml(self) -> str:
        """Serialise to TOML (the subset the manifest uses: scalars, arrays, tables, arrays of tables)."""
        return dumps_toml(self.to_dict())


@functools.lru_cache(maxsize=256)
def _parse_toml(text: str) -> Manifest:
    """The checked manifest of a TOML text, kept for the next reader of the same text (successes only: a
    failure raises again each time, so each caller's error names its own source)."""
    return Manifest.from_dict(tomllib.loads(text))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} to TOML")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def dumps_toml(data: Mapping[str, Any], _prefix: str = "") -> str:
    """Write nested dicts as TOML: a dict value becomes a ``[table]``, a list of dicts ``[[array]]`` items
    (whose own dict values are written inline, ``code = { ... }``), anything else ``key = value``."""
    lines: list[str] = []
    blocks: list[str] = []
    for key, value in data.items():
        full = f"{_prefix}{_toml_key(key)}"
        if isinstance(value, Mapping):
            body = dumps_toml(value, full + ".")
            blocks.append(f"[{full}]\n{body}".rstrip("\n"))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for item in value:
                items = "\n".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in item.items())
                blocks.append(f"[[{full}]]\n{items}")
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    parts = (["\n".join(lines)] if lines else []) + blocks
    return "\n\n".join(parts) + "\n"


# -- pydantic's complaints as radgate's one-line errors -----------------------------------------------------

_EXPECTED = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string in quotes",
    "tuple_type": "a list",
    "list_type": "a list",
    "dict_type": "a table",
    "mapping_type": "a table",
    "dataclass_type": "a table",
    "dataclass_args_type": "a table",
    "model_type": "a table",
}

_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _validate(cls: type[Any], raw: Any, section: str) -> Any:
    """``raw`` (TOML data) checked as ``cls``, the table at ``section``; errors as :class:`ManifestError`."""
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        raise ManifestError(_explain(exc, cls, section)) from None


def _key(section: str, loc: Sequence[Any], rest: str = "") -> str:
    key = section
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    if rest:
        key += rest if rest.startswith("[") else (f".{rest}" if key else rest)
    return key


def _inner_dataclass(annotation: Any) -> type | None:
    """The schema class inside ``Code | None``, ``tuple[Finding, ...]``, ``Mapping[str, OutputSpec]``."""
    if hasattr(annotation, "__pydantic_fields__"):
        return typing.cast(type, annotation)
    for arg in typing.get_args(annotation):
        found = _inner_dataclass(arg)
        if found is not None:
            return found
    return None


def _table_at(root: type, loc: Sequence[Any]) -> tuple[type, bool]:
    """The schema class of the table at ``loc``, and whether the last key names an array of tables."""
    cls, array = root, False
    for part in loc:
        fields = getattr(cls, "__pydantic_fields__", {})
        if isinstance(part, str) and part in fields:
            annotation = fields[part].annotation
            inner = _inner_dataclass(annotation)
            array = inner is not None and "tuple" in str(annotation)
            cls = inner or cls
    return cls, array


def _explain(exc: ValidationError, root: type, section: str) -> str:
    """One line: each complaint names the full key, the value received and what was expected."""
    parts: list[str] = []
    missing: list[str] = []
    unknown: dict[tuple[Any, ...], list[str]] = {}
    errors = exc.errors()
    for e in errors:
        loc = tuple(e["loc"])
        if e["type"] == "too_short" and any(
            len(o["loc"]) > len(loc) and tuple(o["loc"][: len(loc)]) == loc for o in errors
        ):
            continue  # a list whose items failed: the items' errors say why
        if e["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
            unknown.setdefault(loc[:-1], []).append(repr(loc[-1]))
            continue
        error = (e.get("ctx") or {}).get("error")
        if isinstance(error, ManifestError):
            if error.key is None or error.expected is None:
                parts.append(str(error).rstrip("."))
            else:
                key = _key(section, loc, error.key)
                parts.append(f"manifest key {key!r} is {error.value!r}; expected {error.expected}")
            continue
        key = _key(section, loc)
        if e["type"] == "missing":
            missing.append(repr(key))
            continue
        _, array = _table_at(root, loc)
        if e["type"] == "too_short":
            expected = f"at least one [[{key.split('.')[-1]}]] table" if array else "a non-empty list"
        elif e["type"] == "literal_error":
            expected = "one of " + str((e.get("ctx") or {}).get("expected", "")).replace(" or ", ", ")
        elif e["type"] == "greater_than_equal":
            expected = f"at least {(e.get('ctx') or {}).get('ge')}"
        elif e["type"] in ("tuple_type", "list_type") and array:
            expected = f"an array of tables ([[{key.split('.')[-1]}]])"
        else:
            expected = _EXPECTED.get(e["type"], e["msg"][:1].lower() + e["msg"][1:])
        parts.append(f"manifest key {key!r} is {e['input']!r}; expected {expected}")
    for where, names in unknown.items():
        cls, _ = _table_at(root, where)
        fields = getattr(cls, "__pydantic_fields__", {})
        known = [f for f in fields if not (cls is OutputSpec and f == "name")]
        table = f"[{_key(section, where)}]" if _key(section, where) else "the top level"
        parts.insert(
            0,
            f"manifest has unknown key(s) {', '.join(names)} in {table}; expected only {', '.join(known)}",
        )
    if missing:
        parts.append(
            f"manifest key {missing[0]} is missing"
            if len(missing) == 1
            else f"manifest keys {', '.join(missing)} are missing"
        )
    return "; ".join(parts) + "."


for _cls, _section in (
    (Code, "code"),
    (ModelInfo, "model"),
    (Finding, "findings"),
    (IntendedUse, "intended_use"),
    (Preprocessing, "preprocessing"),
    (OutputSpec, "outputs"),
    (OperatingPoint, "operating_points"),
    (Explanation, "explanation"),
    (TrainingData, "training_data"),
    (Weights, "weights"),
    (Calibration, "calibration"),
    (Manifest, ""),
):
    _raise_manifest_errors(_cls, _section)
