"""What the inference engine hands to the result writers: :class:`AIResult` and its :class:`AIFinding` s.

These are plain, frozen dataclasses, checked when they are made: once a constructor returns, every value is
one the SR (PS3.16 TID 1500), the presentation state (PS3.3 C.11.x, C.10.5) and the heatmap Secondary
Capture can encode, so that a result never fails later, half-way through writing.

Contract for the inference engine
---------------------------------
One :class:`AIResult` per model run on one study, with one :class:`AIFinding` per finding type per source
image (a negative finding included: ``present=False`` is a result too)::

    from pydicom.sr.codedict import codes
    from radgate.results import AIFinding, AIResult, Concept

    finding = AIFinding(
        name="Pneumothorax",
        finding_type=Concept.from_code(codes.SCT.Pneumothorax),  # SCT 36118008
        finding_site=Concept("39607008", "SCT", "Lung structure"),  # or None
        probability=0.83,                  # calibrated, in [0, 1]
        threshold=0.42,                    # the operating point's threshold on the same scale
        operating_point="high-sensitivity",
        present=True,                      # must equal probability >= threshold
        SOPInstanceUID=source.SOPInstanceUID,
        region=((120.0, 80.5), (300.0, 80.5), (300.0, 410.0), (120.0, 410.0)),  # or None
    )
    result = AIResult(
        model_name="radgate-demo-ptx", model_version="1.2.0", model_sha256="ab12...",  # 64 hex digits
        synthetic=True, task="triage", findings=(finding,),
        window_center=display.window_center, window_width=display.window_width,
        voi_source=display.voi_source,     # from radgate.imaging.to_display(source)
        explanations={source.SOPInstanceUID: cam},  # optional: 2-D float maps in [0, 1]
    )

Region coordinates follow PS3.3 C.10.5.1.2 / C.18.6.1.1: ``(column, row)`` pairs in pixels of the source image
where ``(0, 0)`` is the top-left corner of the top-left pixel and ``(Columns, Rows)`` the bottom-right corner
of the bottom-right pixel; the centre of pixel ``[r, c]`` is ``(c + 0.5, r + 0.5)``. A region is an open
list of at least three vertices; the writers close it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
from pydicom.sr.coding import Code

__all__ = ["AIFinding", "AIResult", "Concept", "TASKS", "VOI_SOURCES"]

#: The tasks a model package may declare (its manifest's ``task``).
TASKS = ("triage", "diagnostic", "detection", "segmentation")

#: How the window was chosen, as :class:`radgate.imaging.DisplayImage` reports it.
VOI_SOURCES = ("window", "voi_lut_sequence", "minmax")

_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Concept:
    """A coded concept (PS3.3 8.8 Code Sequence Macro): Code Value, Coding Scheme Designator, Code Meaning."""

    value: str
    scheme: str
    meaning: str

    def __post_init__(self) -> None:
        for name, limit in (("value", 64), ("scheme", 16), ("meaning", 64)):
            text = getattr(self, name)
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"Concept {name} {text!r} must be a non-empty string.")
            if len(text) > limit:
                raise ValueError(
                    f"Concept {name} {text!r} is {len(text)} characters; at most {limit} allowed."
                )

    @classmethod
    def from_code(cls, code: Code | Concept) -> Concept:
        """Make a Concept from pydicom's ``Code`` (e.g. ``codes.SCT.Pneumothorax``)."""
        if isinstance(code, Concept):
            return code
        if isinstance(code, Code):
            return cls(str(code.value), str(code.scheme_designator), str(code.meaning))
        raise TypeError(f"Expected a Concept or a pydicom Code, got {type(code).__name__}: {code!r}.")

    def to_code(self) -> Code:
        return Code(self.value, self.scheme, self.meaning)

    def __str__(self) -> str:
        return f"({self.value}, {self.scheme}, {self.meaning!r})"


def _check_unit_interval(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{what} must be a number in [0, 1], got {type(value).__name__} {value!r}.")
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise ValueError(f"{what} {number!r} is outside [0, 1].")
    return number


def _check_uid(what: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > 64 or not _UID.match(value):
        raise ValueError(
            f"{what} {value!r} is not a valid DICOM UID (PS3.5 9.1: digits and dots, <= 64 chars)."
        )
    return value


def _check_text(what: str, value: Any, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} {value!r} must be a non-empty string.")
    if len(value) > limit:
        raise ValueError(f"{what} {value!r} is {len(value)} characters; at most {limit} allowed.")
    if any(ch in value for ch in "\\\r\n"):
        raise ValueError(f"{what} {value!r} must not contain a backslash or line breaks.")
    return value


def _check_region(value: Iterable[Sequence[float]] | None) -> tuple[tuple[float, float], ...] | None:
    if value is None:
        return None
    points: list[tuple[float, float]] = []
    for index, point in enumerate(value):
        if len(point) != 2:
            raise ValueError(f"Region point {index} {point!r} must be a (column, row) pair.")
        col, row = float(point[0]), float(point[1])
        if not (math.isfinite(col) and math.isfinite(row)) or col < 0 or row < 0:
            raise ValueError(f"Region point {index} {point!r} must be finite and non-negative (pixel units).")
        points.append((col, row))
    if len(points) > 1 and points[0] == points[-1]:
        points.pop()  # given closed; kept open here, the writers close it
    if len(set(points)) < 3:
        raise ValueError(
            f"A region needs at least 3 distinct (column, row) vertices, got {len(set(points))}: {points!r}."
        )
    return tuple(points)


@dataclass(frozen=True)
class AIFinding:
    """One finding of one model on one source image (one TID 1500 measurement group, one GSPS outline).

    ``probability`` is the model's calibrated probability of the finding; ``threshold`` the operating point's
    threshold on the same scale; ``present`` the decision at that operating point and must equal
    ``probability >= threshold``. ``SOPInstanceUID`` names the source image; ``region`` (optional) outlines
    the finding in that image's pixel coordinates (see the module docstring).
    """

    name: str
    finding_type: Concept
    probability: float
    threshold: float
    operating_point: str
    present: bool
    SOPInstanceUID: str
    finding_site: Concept | None = None
    region: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self) -> None:
        _check_text("Finding name", self.name, 64)
        object.__setattr__(self, "finding_type", Concept.from_code(self.finding_type))
        if self.finding_site is not None:
            object.__setattr__(self, "finding_site", Concept.from_code(self.finding_site))
        probability = _check_unit_interval(f"Probability of {self.name!r}", self.probability)
        threshold = _check_unit_interval(f"Threshold of {self.name!r}", self.threshold)
        object.__setattr__(self, "probability", probability)
        object.__setattr__(self, "threshold", threshold)
        _check_text("Operating point", self.operating_point, 64)
        if not isinstance(self.present, (bool, np.bool_)):
            raise TypeError(f"present must be a bool, got {type(self.present).__name__} {self.present!r}.")
        object.__setattr__(self, "present", bool(self.present))
        if self.present != (probability >= threshold):
            raise ValueError(
                f"Finding {self.name!r}: present={self.present} contradicts probability {probability} "
                f"{'>=' if probability >= threshold else '<'} threshold {threshold}."
            )
        _check_uid("Finding SOPInstanceUID", self.SOPInstanceUID)
        object.__setattr__(self, "region", _check_region(self.region))

    @property
    def label(self) -> str:
        """A short text for an overlay: ``"Pneumothorax 0.83 (present)"``."""
        return f"{self.name} {self.probability:.2f} ({'present' if self.present else 'absent'})"


@dataclass(frozen=True)
class AIResult:
    """The output of one model run on one study, as the result writers (SR, GSPS, SC) need it.

    ``window_center`` / ``window_width`` / ``voi_source`` record the VOI the model saw
    (:func:`radgate.imaging.to_display`); the presentation state reproduces it. ``synthetic`` marks a model
    trained on synthetic data (the bundled demo model): every object written for it says
    "synthetic demo model - not for clinical use". ``explanations`` maps a source SOP Instance UID to a 2-D
    map in [0, 1] over that image (any resolution with the image's aspect, e.g. a CAM at the model's input
    size); it is written only as a heatmap labelled "rough guide, not proof".
    """

    model_name: str
    model_version: str
    model_sha256: str
    synthetic: bool
    task: str
    findings: tuple[AIFinding, ...]
    window_center: float
    window_width: float
    voi_source: str = "window"
    explanations: Mapping[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_text("Model name", self.model_name, 64)
        _check_text("Model version", self.model_version, 64)
        if not isinstance(self.model_sha256, str) or not _SHA256.match(self.model_sha256):
            raise ValueError(f"model_sha256 {self.model_sha256!r} must be 64 lower-case hex digits.")
        if not isinstance(self.synthetic, bool):
            raise TypeError(f"synthetic must be a bool, got {self.synthetic!r}.")
        if self.task not in TASKS:
            raise ValueError(f"task {self.task!r} is not one of {', '.join(TASKS)}.")
        findings = tuple(self.findings)
        if not findings:
            raise ValueError("An AIResult needs at least one finding (a negative finding counts).")
        for index, finding in enumerate(findings):
            if not isinstance(finding, AIFinding):
                raise TypeError(f"findings[{index}] must be an AIFinding, got {type(finding).__name__}.")
        object.__setattr__(self, "findings", findings)
        for name in ("window_center", "window_width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                raise TypeError(f"{name} must be a number, got {value!r}.")
            if not math.isfinite(float(value)):
                raise ValueError(f"{name} {value!r} must be finite.")
            object.__setattr__(self, name, float(value))
        if self.window_width < 1:
            raise ValueError(f"window_width {self.window_width} is below 1 (PS3.3 C.11.2.1.2 requires >= 1).")
        if self.voi_source not in VOI_SOURCES:
            raise ValueError(f"voi_source {self.voi_source!r} is not one of {', '.join(VOI_SOURCES)}.")
        explanations: dict[str, np.ndarray] = {}
        for uid, raw in dict(self.explanations).items():
            if uid not in self.source_uids:
                raise ValueError(
                    f"explanations has a map for SOPInstanceUID {uid!r}, which no finding refers to; "
                    f"expected one of {', '.join(self.source_uids)}."
                )
            explanation = np.array(raw, dtype=np.float32)
            if explanation.ndim != 2 or min(explanation.shape) < 2:
                raise ValueError(f"Explanation map for {uid} must be 2-D, got shape {explanation.shape}.")
            if not np.isfinite(explanation).all() or explanation.min() < 0 or explanation.max() > 1:
                raise ValueError(
                    f"Explanation map for {uid} must hold finite values in [0, 1], got range "
                    f"[{float(np.nanmin(explanation))}, {float(np.nanmax(explanation))}]."
                )
            explanation.setflags(write=False)
            explanations[uid] = explanation
        object.__setattr__(self, "explanations", MappingProxyType(explanations))

    @property
    def source_uids(self) -> tuple[str, ...]:
        """SOP Instance UIDs of the source images the findings refer to, in first-seen order."""
        return tuple(dict.fromkeys(f.SOPInstanceUID for f in self.findings))

    def findings_for(self, SOPInstanceUID: str) -> tuple[AIFinding, ...]:
        return tuple(f for f in self.findings if f.SOPInstanceUID == SOPInstanceUID)

    @property
    def any_present(self) -> bool:
        return any(f.present for f in self.findings)
