r"""Distribution distances for input and output drift, and thresholds learnt from reference chunks.

Categorical features: the Jensen–Shannon divergence (base 2, in [0, 1])

.. math::

    JS(P, Q) = \tfrac12 KL(P \| M) + \tfrac12 KL(Q \| M),\qquad M = \tfrac12 (P + Q)

(Lin 1991), or Pearson's :math:`\chi^2` statistic of the 2×K contingency table (as
``scipy.stats.chi2_contingency`` without continuity correction), reported as Cramér's V so that its size
does not grow with the counts. Numeric features: the two-sample Kolmogorov–Smirnov statistic
:math:`D = \sup_x |F_1(x) - F_2(x)|` (``scipy.stats.ks_2samp``) or the first Wasserstein distance
:math:`W_1 = \int |F_1 - F_2|\,dx` (``scipy.stats.wasserstein_distance``), divided by the reference's
interquartile range so that one threshold rule suits any unit.

A distance says nothing by itself: :func:`chunk_threshold` learns what the reference period's own
variation looks like. It draws ``chunks`` random subsets of the size of the period being checked from the
reference, measures each against the rest of the reference, and sets the band at mean ± 3σ of those
distances, taken on a scale where they are close to normal (:data:`NORMALISING_POWER`; the approach of
NannyML's univariate drift detection). A period's distance above the upper bound is drift.

References: Lin J. Divergence measures based on the Shannon entropy. IEEE Trans Inf Theory 1991;37:145-151.
Wilson EB, Hilferty MM. The distribution of chi-square. PNAS 1931;17:684-688.
Rabanser S, Günnemann S, Lipton ZC. Failing loudly: an empirical study of methods for detecting dataset
shift. NeurIPS 2019.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from radgate.stats.checks import StatisticsInputError

__all__ = [
    "CategoricalDistance",
    "NORMALISING_POWER",
    "ChunkThreshold",
    "NumericDistance",
    "categorical_distance",
    "chunk_threshold",
    "jensen_shannon",
    "ks_statistic",
    "numeric_distance",
]


class CategoricalDistance(enum.Enum):
    JENSEN_SHANNON = "jensen_shannon"
    CHI2 = "chi2"


class NumericDistance(enum.Enum):
    KS = "ks"
    WASSERSTEIN = "wasserstein"


def jensen_shannon(p_counts: ArrayLike, q_counts: ArrayLike) -> float:
    """Jensen–Shannon divergence (base 2) of two count (or probability) vectors over the same categories."""
    p = np.asarray(p_counts, dtype=np.float64)
    q = np.asarray(q_counts, dtype=np.float64)
    if p.shape != q.shape or p.ndim != 1:
        raise StatisticsInputError(f"count vectors must have the same length, got {p.shape} and {q.shape}")
    if (p < 0).any() or (q < 0).any() or p.sum() <= 0 or q.sum() <= 0:
        raise StatisticsInputError("counts must be non-negative with a positive total")
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: NDArray[np.float64]) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return max(0.0, 0.5 * kl(p) + 0.5 * kl(q))


def _counts(
    reference: Sequence[str], current: Sequence[str]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    ref_levels, ref_inverse = np.unique(np.asarray(reference, dtype=str), return_inverse=True)
    cur = np.asarray(current, dtype=str)
    levels = np.union1d(ref_levels, np.unique(cur))
    ref_idx = np.searchsorted(levels, ref_levels)[ref_inverse]
    cur_idx = np.searchsorted(levels, cur)
    return (
        np.bincount(ref_idx, minlength=levels.size).astype(np.float64),
        np.bincount(cur_idx, minlength=levels.size).astype(np.float64),
    )


def categorical_distance(
    reference: Sequence[str],
    current: Sequence[str],
    method: CategoricalDistance = CategoricalDistance.JENSEN_SHANNON,
) -> float:
    """Distance between two samples of a categorical feature (missing values should be a category)."""
    if len(reference) == 0 or len(current) == 0:
        raise StatisticsInputError("both samples need at least one value")
    p, q = _counts(reference, current)
    if method is CategoricalDistance.JENSEN_SHANNON:
        return jensen_shannon(p, q)
    table = np.vstack([p, q])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0
    chi2 = float(sps.chi2_contingency(table, correction=False)[0])
    return float(np.sqrt(chi2 / table.sum()))  # Cramér's V for a 2 x K table


def numeric_distance(
    reference: ArrayLike, current: ArrayLike, method: NumericDistance = NumericDistance.KS
) -> float:
    """Distance between two samples of a numeric feature (NaNs dropped)."""
    r = np.asarray(reference, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    r, c = r[~np.isnan(r)], c[~np.isnan(c)]
    if r.size == 0 or c.size == 0:
        raise StatisticsInputError("both samples need at least one non-missing value")
    if method is NumericDistance.KS:
        return ks_statistic(r, c)
    q75, q25 = np.percentile(r, [75, 25])
    scale = float(q75 - q25) or float(np.std(r)) or 1.0
    return float(sps.wasserstein_distance(r, c) / scale)


#: Powers that make each distance's null distribution close to normal before mean ± kσ is taken. Squared
#: distances (JS, Cramér's V², 4nD² in the KS tail) behave like χ² variables, right-skewed: mean + 3σ
#: on the raw values is exceeded about 2% of the time for one degree of freedom, not 0.13%. The
#: Wilson–Hilferty (1931) cube root of a χ² variable is nearly normal, hence JS^(1/3) and (V², D², W²)^(1/3).
NORMALISING_POWER: dict[CategoricalDistance | NumericDistance, float] = {
    CategoricalDistance.JENSEN_SHANNON: 1.0 / 3.0,
    CategoricalDistance.CHI2: 2.0 / 3.0,
    NumericDistance.KS: 2.0 / 3.0,
    NumericDistance.WASSERSTEIN: 2.0 / 3.0,
}


def ks_statistic(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    r"""The two-sample Kolmogorov–Smirnov statistic :math:`D = \sup_x |F_a(x) - F_b(x)|` (empirical CDFs).

    The supremum is attained at a sample point, so both CDFs are evaluated at every point of either sample
    (as ``scipy.stats.ks_2samp`` computes its statistic; without its p-value machinery, for speed).
    """
    a_sorted, b_sorted = np.sort(a), np.sort(b)
    points = np.concatenate([a_sorted, b_sorted])
    fa = np.searchsorted(a_sorted, points, side="right") / a_sorted.size
    fb = np.searchsorted(b_sorted, points, side="right") / b_sorted.size
    return float(np.max(np.abs(fa - fb)))


@dataclass(frozen=True)
class ChunkThreshold:
    """The band of a distance under no change, in the distance's own units: ``mean`` and ``sd`` on the
    normalising scale ``d**power``, and ``lower``/``upper`` = (mean ∓ ``sigmas`` sd) ** (1/power)."""

    mean: float
    sd: float
    lower: float
    upper: float
    chunks: int
    chunk_size: int
    power: float


def chunk_threshold(
    n_reference: int,
    chunk_size: int,
    distance: Callable[[NDArray[np.intp], NDArray[np.intp]], float],
    chunks: int = 50,
    sigmas: float = 3.0,
    seed: int = 0,
    power: float = 1.0,
) -> ChunkThreshold:
    """Learn a band from ``chunks`` random reference chunks of ``chunk_size`` cases, each measured with
    ``distance(chunk_indices, rest_indices)`` against the rest of the reference.

    The band is mean ± ``sigmas`` standard deviations of ``distance ** power`` (see
    :data:`NORMALISING_POWER`), mapped back to the distance's units.
    """
    if n_reference < 4:
        raise StatisticsInputError(f"the reference needs at least 4 cases to be split, got {n_reference}")
    if chunks < 2:
        raise StatisticsInputError(f"need at least 2 chunks, got {chunks}")
    if power <= 0:
        raise StatisticsInputError(f"power must be positive, got {power}")
    size = int(min(max(1, chunk_size), n_reference // 2))
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(chunks):
        order = rng.permutation(n_reference)
        values.append(distance(order[:size], order[size:]))
    arr = np.maximum(np.asarray(values, dtype=np.float64), 0.0) ** power
    mean, sd = float(arr.mean()), float(arr.std(ddof=1))
    low = max(0.0, mean - sigmas * sd) ** (1.0 / power)
    high = (mean + sigmas * sd) ** (1.0 / power)
    return ChunkThreshold(mean ** (1.0 / power), sd, low, high, chunks, size, power)
