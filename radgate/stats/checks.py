"""Input checks shared by the statistics: labels are 0/1, scores are finite numbers, both classes present.

Every statistic in :mod:`radgate.stats` refuses input it cannot answer honestly and says why, naming the
problem and the count (``"scores contain 3 NaN values out of 200"``) rather than returning ``nan`` or a
silently wrong number. The error type is :class:`StatisticsInputError`, a :class:`ValueError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from radgate.errors import Invalid

__all__ = [
    "StatisticsInputError",
    "as_labels",
    "as_probabilities",
    "as_scores",
    "check_confidence",
    "class_counts",
    "require_both_classes",
    "require_varying",
]


class StatisticsInputError(Invalid, ValueError):
    """The data cannot answer the question (one class only, NaN scores, constant scores, n too small)."""


def _preview(values: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


def as_labels(labels: ArrayLike, name: str = "labels") -> NDArray[np.bool_]:
    """Return ``labels`` as a boolean array (True = positive), accepting 0/1, booleans or 0.0/1.0.

    Raises :class:`StatisticsInputError` naming the offending values and their count otherwise.
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise StatisticsInputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise StatisticsInputError(f"{name} are empty: there are no cases to analyse")
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind not in "iuf":
        raise StatisticsInputError(f"{name} must be 0/1 numbers, got values of type {arr.dtype}")
    if arr.dtype.kind == "f":
        n_nan = int(np.isnan(arr).sum())
        if n_nan:
            raise StatisticsInputError(
                f"{name} contain {n_nan} NaN value(s) out of {arr.size}; "
                "every case needs a 0/1 reference label"
            )
    bad = ~((arr == 0) | (arr == 1))
    if bad.any():
        values = np.unique(arr[bad]).tolist()
        raise StatisticsInputError(
            f"{name} must be 0 (negative) or 1 (positive); {int(bad.sum())} value(s) are not: "
            f"{_preview(values)}"
        )
    return arr == 1


def as_scores(scores: ArrayLike, name: str = "scores", n: int | None = None) -> NDArray[np.float64]:
    """Return ``scores`` as a float64 array; NaN or infinite values are an error that names their count."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 1:
        raise StatisticsInputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if n is not None and arr.size != n:
        raise StatisticsInputError(
            f"{name} have {arr.size} values but there are {n} labels; they must pair up"
        )
    n_nan = int(np.isnan(arr).sum())
    if n_nan:
        raise StatisticsInputError(
            f"{name} contain {n_nan} NaN value(s) out of {arr.size}; remove those cases (and report them as "
            "failed in the case flow) before the analysis"
        )
    n_inf = int(np.isinf(arr).sum())
    if n_inf:
        raise StatisticsInputError(f"{name} contain {n_inf} infinite value(s) out of {arr.size}")
    return arr


def as_probabilities(
    probabilities: ArrayLike, name: str = "probabilities", n: int | None = None
) -> NDArray[np.float64]:
    """Like :func:`as_scores`, and every value must lie in [0, 1] (calibration needs probabilities)."""
    arr = as_scores(probabilities, name=name, n=n)
    outside = (arr < 0.0) | (arr > 1.0)
    if outside.any():
        raise StatisticsInputError(
            f"{name} must lie in [0, 1] for calibration; {int(outside.sum())} value(s) do not "
            f"(min {arr.min():g}, max {arr.max():g}); recalibrate the raw scores first (Platt or isotonic)"
        )
    return arr


def class_counts(labels: NDArray[np.bool_]) -> tuple[int, int]:
    """Return ``(n_positive, n_negative)``."""
    n_pos = int(np.count_nonzero(labels))
    return n_pos, int(labels.size - n_pos)


def require_both_classes(labels: NDArray[np.bool_], what: str, minimum: int = 1) -> tuple[int, int]:
    """Require ``minimum`` positive and ``minimum`` negative cases for ``what``; return the counts."""
    n_pos, n_neg = class_counts(labels)
    if n_pos < minimum or n_neg < minimum:
        if n_pos == 0 or n_neg == 0:
            only = "negatives" if n_pos == 0 else "positives"
            raise StatisticsInputError(
                f"{what} needs both positive and negative cases; all {labels.size} case(s) are {only} "
                f"({n_pos} positive, {n_neg} negative)"
            )
        raise StatisticsInputError(
            f"{what} needs at least {minimum} positive and {minimum} negative cases; "
            f"got {n_pos} positive and {n_neg} negative"
        )
    return n_pos, n_neg


def require_varying(scores: NDArray[np.float64], what: str) -> None:
    """Refuse constant scores: the ROC curve is the chance diagonal and every variance is zero."""
    if scores.size and scores.min() == scores.max():
        raise StatisticsInputError(
            f"{what}: the scores are constant ({scores[0]:g} for all {scores.size} cases), so they "
            "cannot rank cases; check that the score column is the model output"
        )


def check_confidence(confidence: float) -> float:
    """Return ``confidence`` if it is strictly between 0 and 1 (0.95 for a 95% interval)."""
    if not 0.0 < confidence < 1.0:
        raise StatisticsInputError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence!r}")
    return float(confidence)
