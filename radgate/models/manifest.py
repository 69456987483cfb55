"""The model package manifest (``manifest.toml``): what a model is, what it is for, and how to feed it.

The format is documented in ``docs/model-package.md``. Every class here is valid once its constructor
returns: a wrong value raises :class:`ManifestError` naming the key, the value received and what was
expected. Reading is strict on purpose: a manifest is written by a vendor or a training script once and read
by every installation, so a typo must fail at ``radgate models add``, not at 3 a.m. during inference.

Codes for findings follow the coded concept triplet of PS3.3 8.8 (Code Value, Coding Scheme Designator,
Code Meaning) so that the results writer can put them into a TID 1500 SR unchanged.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from radgate.errors import Invalid

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
# Semantic Versioning 2.0.0 (https://semver.org), without build metadata.
VERSION_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")


class ManifestError(Invalid, ValueError):
    """A manifest key is missing, has the wrong type or a value outside what is allowed."""


# -- small typed readers: each names the key, the value and what was expected ------------------------------


def _fail(key: str, value: Any, expected: str) -> ManifestError:
    return ManifestError(f"manifest key {key!r} is {value!r}; expected {expected}.")


def _str(key: str, value: Any, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise _fail(key, value, "a non-empty string" if not allow_empty else "a string")
    return value


def _choice(key: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise _fail(key, value, "one of " + ", ".join(repr(a) for a in allowed))
    return str(value)


def _number(key: str, value: Any, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise _fail(key, value, "a number")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise _fail(key, value, f"a number in [{lo}, {hi}]")
    return float(value)


def _int(key: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(key, value, "an integer")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise _fail(key, value, f"an integer in [{lo}, {hi}]")
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, value, "true or false")
    return value


def _str_tuple(
    key: str, value: Any, *, allowed: Sequence[str] | None = None, non_empty: bool = True
) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise _fail(key, value, "a list of strings")
    items = tuple(value)
    if non_empty and not items:
        raise _fail(key, value, "a non-empty list of strings")
    for i, item in enumerate(items):
        _str(f"{key}[{i}]", item)
        if allowed is not None:
            _choice(f"{key}[{i}]", item, allowed)
    return items


def _table(key: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(key, value, "a table")
    return value


def _no_unknown(key: str, table: Mapping[str, Any], known: Sequence[str]) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        where = f"[{key}]" if key else "the top level"
        raise ManifestError(
            f"manifest has unknown key(s) {', '.join(repr(u) for u in unknown)} in {where}; "
            f"expected only {', '.join(known)}."
        )


def _require(key: str, table: Mapping[str, Any], name: str) -> Any:
    if name not in table:
        raise ManifestError(f"manifest key {key + '.' + name if key else name!r} is missing.")
    return table[name]


# -- the parts ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Code:
    """A coded concept (PS3.3 8.8): ``value`` in coding scheme ``scheme`` (SCT, RADLEX, DCM ...)."""

    scheme: str
    value: str
    meaning: str

    def __post_init__(self) -> None:
        _str("code.scheme", self.scheme)
        _str("code.value", self.value)
        _str("code.meaning", self.meaning)
        if len(self.value) > 64:
            raise _fail("code.value", self.value, "at most 64 characters (PS3.3 8.1 Code Value, VR SH/UC)")

    @classmethod
    def from_dict(cls, key: str, raw: Any) -> Code:
        table = _table(key, raw)
        _no_unknown(key, table, ("scheme", "value", "meaning"))
        return cls(
            scheme=_str(f"{key}.scheme", _require(key, table, "scheme")),
            value=_str(f"{key}.value", _require(key, table, "value")),
            meaning=_str(f"{key}.meaning", _require(key, table, "meaning")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "value": self.value, "meaning": self.meaning}


@dataclass(frozen=True)
class ModelInfo:
    """``[model]``: identity, task kind and licence."""

    name: str
    version: str
    task: str
    description: str
    licence: str
    synthetic_training_data: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise _fail(
                "model.name", self.name, "lower-case letters, digits and '-' (at most 63), e.g. 'cxr-ptx'"
            )
        if not isinstance(self.version, str) or not VERSION_RE.match(self.version):
            raise _fail("model.version", self.version, "a semantic version such as '1.0.0'")
        _choice("model.task", self.task, TASKS)
        _str("model.description", self.description)
        _str("model.licence", self.licence)
        _bool("model.synthetic_training_data", self.synthetic_training_data)


@dataclass(frozen=True)
class Finding:
    """``[[findings]]``: one finding the model scores, the ONNX output carrying its score, and its codes."""

    name: str
    output: str
    code: Code
    site: Code | None = None
    radlex: Code | None = None

    def __post_init__(self) -> None:
        _str("findings.name", self.name)
        _str("findings.output", self.output)


@dataclass(frozen=True)
class IntendedUse:
    """``[intended_use]``: the population the model was built for; routing rules derive from it."""

    modalities: tuple[str, ...]
    summary: str
    sop_classes: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ()
    views: tuple[str, ...] = ()
    age_min: float | None = None
    age_max: float | None = None
    sexes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _str_tuple("intended_use.modalities", self.modalities)
        _str("intended_use.summary", self.summary)
        for i, uid in enumerate(self.sop_classes):
            if not UID_RE.match(uid) or len(uid) > 64:
                raise _fail(
                    f"intended_use.sop_classes[{i}]", uid, "a DICOM UID (digits and dots, <= 64 chars)"
                )
        for i, sex in enumerate(self.sexes):
            _choice(f"intended_use.sexes[{i}]", sex, SEXES)
        if self.age_min is not None:
            _number("intended_use.age_min", self.age_min, 0, 150)
        if self.age_max is not None:
            _number("intended_use.age_max", self.age_max, 0, 150)
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise _fail("intended_use.age_min", self.age_min, f"at most age_max ({self.age_max})")


@dataclass(frozen=True)
class Preprocessing:
    """``[preprocessing]``: how a DICOM image becomes the model's input tensor ``[N, channels, H, W]``.

    ``voi = "first_window"``: Modality LUT, then the first VOI LUT Sequence item, else the first Window
    Center/Width pair, else the image's min/max (PS3.3 C.11.2); ``monochrome1 = "invert"``: MONOCHROME1 is
    inverted so higher always means brighter. Both are what :func:`radgate.imaging.to_display` does.
    """

    height: int
    width: int
    channels: int = 1
    input: str = "image"
    voi: str = "first_window"
    monochrome1: str = "invert"
    normalisation: str = "none"
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        _int("preprocessing.height", self.height, 8, 4096)
        _int("preprocessing.width", self.width, 8, 4096)
        if self.channels not in (1, 3):
            raise _fail("preprocessing.channels", self.channels, "1, or 3 (grey replicated)")
        _str("preprocessing.input", self.input)
        _choice("preprocessing.voi", self.voi, VOI_METHODS)
        _choice("preprocessing.monochrome1", self.monochrome1, MONOCHROME1_METHODS)
        _choice("preprocessing.normalisation", self.normalisation, NORMALISATIONS)
        _number("preprocessing.mean", self.mean)
        if _number("preprocessing.std", self.std) <= 0:
            raise _fail("preprocessing.std", self.std, "a number above 0")


@dataclass(frozen=True)
class OutputSpec:
    """``[outputs.NAME]``: one ONNX output, what it means and whether it is a calibrated probability."""

    name: str
    kind: str = "probability"
    meaning: str = ""
    calibrated: bool = False

    def __post_init__(self) -> None:
        _str("outputs name", self.name)
        _choice(f"outputs.{self.name}.kind", self.kind, OUTPUT_KINDS)
        _str(f"outputs.{self.name}.meaning", self.meaning, allow_empty=True)
        _bool(f"outputs.{self.name}.calibrated", self.calibrated)


@dataclass(frozen=True)
class OperatingPoint:
    """``[[operating_points]]``: a named threshold on a finding's score, with the claimed performance."""

    name: str
    threshold: float
    sensitivity: float | None = None
    specificity: float | None = None
    finding: str | None = None

    def __post_init__(self) -> None:
        _str("operating_points.name", self.name)
        _number(f"operating_points[{self.name}].threshold", self.threshold)
        if self.sensitivity is not None:
            _number(f"operating_points[{self.name}].sensitivity", self.sensitivity, 0, 1)
        if self.specificity is not None:
            _number(f"operating_points[{self.name}].specificity", self.specificity, 0, 1)


@dataclass(frozen=True)
class Explanation:
    """``[explanation]``: where the explanation map comes from.

    ``cam``: the ONNX output named ``output`` (kind ``class_activation_map``); ``occlusion``: occlusion
    sensitivity (Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks", ECCV) with a
    grey ``patch`` x ``patch`` square moved by ``stride``; ``none``: no map. Either way a map is a rough
    guide to where the model looked, not proof of a finding.
    """

    method: str
    output: str | None = None
    patch: int = 32
    stride: int = 16

    def __post_init__(self) -> None:
        _choice("explanation.method", self.method, EXPLANATION_METHODS)
        if self.method == "cam" and not self.output:
            raise _fail("explanation.output", self.output, "the name of the CAM output when method = 'cam'")
        _int("explanation.patch", self.patch, 2, 1024)
        _int("explanation.stride", self.stride, 1, 1024)


@dataclass(frozen=True)
class TrainingData:
    """``[training_data]``: a summary of what the model learnt from."""

    summary: str
    n_images: int = 0
    profiles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _str("training_data.summary", self.summary)
        _int("training_data.n_images", self.n_images, 0)
        _str_tuple("training_data.profiles", self.profiles, non_empty=False)


@dataclass(frozen=True)
class Weights:
    """``[weights]``: the ONNX file inside the package and its SHA-256 (lower-case hex)."""

    file: str
    sha256: str

    def __post_init__(self) -> None:
        _str("weights.file", self.file)
        if self.file.startswith("/") or ".." in self.file.replace("\\", "/").split("/"):
            raise _fail("weights.file", self.file, "a relative path inside the package")
        if not isinstance(self.sha256, str) or not SHA256_RE.match(self.sha256):
            raise _fail("weights.sha256", self.sha256, "64 lower-case hexadecimal digits (SHA-256)")


@dataclass(frozen=True)
class Calibration:
    """``[calibration]`` (optional; written by ``radgate models recalibrate``): a site's map from the raw
    score of ``finding`` to a calibrated probability, applied by the runtime after the model runs.

    ``platt``: :math:`1/(1 + e^{-(a f + b)})`, :math:`f` the score (or its logit when ``on_logit``);
    ``isotonic``: linear interpolation through the knots ``x`` → ``y``, flat outside.
    """

    method: str  # platt | isotonic
    finding: str
    site: str
    slope: float = 1.0
    intercept: float = 0.0
    on_logit: bool = False
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.method not in ("platt", "isotonic"):
            raise _fail("calibration.method", self.method, "'platt' or 'isotonic'")
        _str("calibration.finding", self.finding)
        _str("calibration.site", self.site)
        if self.method == "isotonic" and (len(self.x) < 1 or len(self.x) != len(self.y)):
            raise _fail("calibration.x", list(self.x), "as many knots as calibration.y, at least one")
        if list(self.x) != sorted(self.x):
            raise _fail("calibration.x", list(self.x), "ascending knots")

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
        c = _table("calibration", raw)
        keys = ("method", "finding", "site", "slope", "intercept", "on_logit", "x", "y")
        _no_unknown("calibration", c, keys)
        return cls(
            method=_require("calibration", c, "method"),
            finding=_require("calibration", c, "finding"),
            site=_require("calibration", c, "site"),
            slope=float(c.get("slope", 1.0)),
            intercept=float(c.get("intercept", 0.0)),
            on_logit=bool(c.get("on_logit", False)),
            x=tuple(float(v) for v in c.get("x", [])),
            y=tuple(float(v) for v in c.get("y", [])),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "finding": self.finding, "site": self.site}
        if self.method == "platt":
            out |= {"slope": self.slope, "intercept": self.intercept, "on_logit": self.on_logit}
        else:
            out |= {"x": list(self.x), "y": list(self.y)}
        return out


# -- the manifest -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """A complete, checked ``manifest.toml``."""

    model: ModelInfo
    findings: tuple[Finding, ...]
    intended_use: IntendedUse
    preprocessing: Preprocessing
    outputs: Mapping[str, OutputSpec]
    operating_points: tuple[OperatingPoint, ...]
    explanation: Explanation
    weights: Weights
    training_data: TrainingData
    validated_subgroups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    calibration: Calibration | None = None  # a site's recalibration map (radgate models recalibrate)

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise _fail("schema_version", self.schema_version, f"{SCHEMA_VERSION}")
        if not self.findings:
            raise _fail("findings", [], "at least one [[findings]] table")
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
        if not self.operating_points:
            raise _fail("operating_points", [], "at least one [[operating_points]] table")
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
                _number(f"operating_points[{op.name}].threshold", op.threshold, 0, 1)
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
    def from_toml(cls, text: str) -> Manifest:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ManifestError(f"manifest.toml is not valid TOML: {exc}") from exc
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Manifest:
        _no_unknown(
            "",
            raw,
            (
                "schema_version",
                "model",
                "findings",
                "intended_use",
                "preprocessing",
                "outputs",
                "operating_points",
                "explanation",
                "validated_subgroups",
                "training_data",
                "weights",
                "calibration",
            ),
        )
        schema_version = _int("schema_version", _require("", raw, "schema_version"))

        m = _table("model", _require("", raw, "model"))
        _no_unknown(
            "model", m, ("name", "version", "task", "description", "licence", "synthetic_training_data")
        )
        model = ModelInfo(
            name=_require("model", m, "name"),
            version=_require("model", m, "version"),
            task=_require("model", m, "task"),
            description=_require("model", m, "description"),
            licence=_require("model", m, "licence"),
            synthetic_training_data=m.get("synthetic_training_data", False),
        )

        raw_findings = _require("", raw, "findings")
        if not isinstance(raw_findings, list):
            raise _fail("findings", raw_findings, "an array of tables ([[findings]])")
        findings = []
        for i, f in enumerate(raw_findings):
            key = f"findings[{i}]"
            f = _table(key, f)
            _no_unknown(key, f, ("name", "output", "code", "site", "radlex"))
            findings.append(
                Finding(
                    name=_require(key, f, "name"),
                    output=_require(key, f, "output"),
                    code=Code.from_dict(f"{key}.code", _require(key, f, "code")),
                    site=Code.from_dict(f"{key}.site", f["site"]) if "site" in f else None,
                    radlex=Code.from_dict(f"{key}.radlex", f["radlex"]) if "radlex" in f else None,
                )
            )

        u = _table("intended_use", _require("", raw, "intended_use"))
        _no_unknown(
            "intended_use",
            u,
            ("modalities", "sop_classes", "body_parts", "views", "age_min", "age_max", "sexes", "summary"),
        )
        intended_use = IntendedUse(
            modalities=_str_tuple("intended_use.modalities", _require("intended_use", u, "modalities")),
            summary=_require("intended_use", u, "summary"),
            sop_classes=_str_tuple("intended_use.sop_classes", u.get("sop_classes", []), non_empty=False),
            body_parts=_str_tuple("intended_use.body_parts", u.get("body_parts", []), non_empty=False),
            views=_str_tuple("intended_use.views", u.get("views", []), non_empty=False),
            age_min=_number("intended_use.age_min", u["age_min"]) if "age_min" in u else None,
            age_max=_number("intended_use.age_max", u["age_max"]) if "age_max" in u else None,
            sexes=_str_tuple("intended_use.sexes", u.get("sexes", []), non_empty=False),
        )

        p = _table("preprocessing", _require("", raw, "preprocessing"))
        _no_unknown(
            "preprocessing",
            p,
            ("height", "width", "channels", "input", "voi", "monochrome1", "normalisation", "mean", "std"),
        )
        preprocessing = Preprocessing(
            height=_require("preprocessing", p, "height"),
            width=_require("preprocessing", p, "width"),
            channels=p.get("channels", 1),
            input=p.get("input", "image"),
            voi=p.get("voi", "first_window"),
            monochrome1=p.get("monochrome1", "invert"),
            normalisation=p.get("normalisation", "none"),
            mean=p.get("mean", 0.0),
            std=p.get("std", 1.0),
        )

        o = _table("outputs", _require("", raw, "outputs"))
        outputs: dict[str, OutputSpec] = {}
        for name, spec in o.items():
            key = f"outputs.{name}"
            spec = _table(key, spec)
            _no_unknown(key, spec, ("kind", "meaning", "calibrated"))
            default_kind = "class_activation_map" if name == "cam" else "probability"
            outputs[name] = OutputSpec(
                name=name,
                kind=spec.get("kind", default_kind),
                meaning=spec.get("meaning", ""),
                calibrated=spec.get("calibrated", False),
            )

        raw_ops = _require("", raw, "operating_points")
        if not isinstance(raw_ops, list):
            raise _fail("operating_points", raw_ops, "an array of tables ([[operating_points]])")
        operating_points = []
        for i, op in enumerate(raw_ops):
            key = f"operating_points[{i}]"
            op = _table(key, op)
            _no_unknown(key, op, ("name", "threshold", "sensitivity", "specificity", "finding"))
            operating_points.append(
                OperatingPoint(
                    name=_require(key, op, "name"),
                    threshold=_number(f"{key}.threshold", _require(key, op, "threshold")),
                    sensitivity=op.get("sensitivity"),
                    specificity=op.get("specificity"),
                    finding=op.get("finding"),
                )
            )

        if "explanation" in raw:
            e = _table("explanation", raw["explanation"])
            _no_unknown("explanation", e, ("method", "output", "patch", "stride"))
            explanation = Explanation(
                method=_require("explanation", e, "method"),
                output=e.get("output"),
                patch=e.get("patch", 32),
                stride=e.get("stride", 16),
            )
        else:
            cams = [n for n, s in outputs.items() if s.kind == "class_activation_map"]
            explanation = Explanation("cam", cams[0]) if cams else Explanation("occlusion")

        subgroups: dict[str, tuple[str, ...]] = {}
        for attr, values in _table("validated_subgroups", raw.get("validated_subgroups", {})).items():
            subgroups[attr] = _str_tuple(f"validated_subgroups.{attr}", values)

        t = _table("training_data", _require("", raw, "training_data"))
        _no_unknown("training_data", t, ("summary", "n_images", "profiles"))
        training_data = TrainingData(
            summary=_require("training_data", t, "summary"),
            n_images=t.get("n_images", 0),
            profiles=_str_tuple("training_data.profiles", t.get("profiles", []), non_empty=False),
        )

        w = _table("weights", _require("", raw, "weights"))
        _no_unknown("weights", w, ("file", "sha256"))
        weights = Weights(file=w.get("file", "model.onnx"), sha256=_require("weights", w, "sha256"))

        return cls(
            model=model,
            findings=tuple(findings),
            intended_use=intended_use,
            preprocessing=preprocessing,
            outputs=outputs,
            operating_points=tuple(operating_points),
            explanation=explanation,
            weights=weights,
            training_data=training_data,
            validated_subgroups=subgroups,
            schema_version=schema_version,
            calibration=Calibration.from_dict(raw["calibration"]) if "calibration" in raw else None,
        )

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
