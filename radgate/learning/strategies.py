"""Active-learning selection: which unlabelled cases to send for labelling first (pure numpy).

Every strategy ranks the candidates by a *priority* (higher first) within strata (scanner × subgroup); the
budget is shared between strata in proportion to their size (largest remainder), with at least one case for
every stratum while the budget allows it, so a new scanner room is never left out of a batch.

- ``uncertainty``: closeness to the deployment's operating point on the logit scale,
  :math:`-|\\mathrm{logit}(s) - \\mathrm{logit}(t)|` (the calls a label could flip).
- ``margin``: the smallest-margin rule (Scheffer et al. 2001) on the model's outputs: for each finding the
  margin between its two classes :math:`|p - (1-p)|`, the smallest over findings; small margin first.
- ``entropy``: the summed binary entropy (bits) of every finding's score (Shannon; Settles 2009 §3.1).
- ``diversity``: k-centre greedy (the core-set of Sener & Savarese 2018): repeatedly the case farthest from
  every already labelled or picked case, on standardised feature vectors.
- ``hybrid``: uncertainty narrows each stratum to three times its quota, then k-centre greedy picks among
  those (uncertain *and* different from each other).
- ``random``: a seeded permutation (the baseline).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from radgate.errors import Invalid

__all__ = ["STRATEGIES", "Pick", "allocate", "k_centre_greedy", "select"]

STRATEGIES = ("uncertainty", "margin", "entropy", "diversity", "hybrid", "random")
_EPS = 1e-6


@dataclass(frozen=True)
class Pick:
    index: int  # into the candidate arrays
    priority: float
    reason: str


def _logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
    q = np.clip(p, _EPS, 1 - _EPS)
    return np.asarray(np.log(q / (1 - q)))


def _entropy_bits(p: NDArray[np.float64]) -> NDArray[np.float64]:
    q = np.clip(p, _EPS, 1 - _EPS)
    return np.asarray(-(q * np.log2(q) + (1 - q) * np.log2(1 - q)))


def allocate(sizes: Sequence[int], budget: int) -> list[int]:
    """Share ``budget`` between strata of ``sizes``: proportional (largest remainder), at least 1 each while
    the budget allows, never more than a stratum holds."""
    sizes_ = np.asarray(sizes, dtype=np.int64)
    total = int(sizes_.sum())
    budget = min(budget, total)
    quota = np.zeros(sizes_.size, dtype=np.int64)
    if budget <= 0:
        return quota.tolist()
    nonempty = np.flatnonzero(sizes_ > 0)
    if budget >= nonempty.size:
        quota[nonempty] = 1
    else:  # fewer picks than strata: the largest strata get one each
        quota[nonempty[np.argsort(-sizes_[nonempty], kind="stable")[:budget]]] = 1
        return quota.tolist()
    left = budget - int(quota.sum())
    while left > 0:
        room = sizes_ - quota
        share = room / max(int(room.sum()), 1) * left
        add = np.minimum(np.floor(share).astype(np.int64), room)
        if add.sum() == 0:  # hand out the remainder one by one, largest fractional share first
            order = np.argsort(-(share - np.floor(share)) - (room > 0) * 1.0, kind="stable")
            for i in order:
                if left == 0:
                    break
                if room[i] > 0:
                    quota[i] += 1
                    left -= 1
            break
        quota += add
        left -= int(add.sum())
    return quota.tolist()


def k_centre_greedy(
    features: NDArray[np.float64],
    k: int,
    reference: NDArray[np.float64] | None = None,
    candidates: NDArray[np.intp] | None = None,
) -> list[tuple[int, float]]:
    """Pick ``k`` rows of ``features`` (among ``candidates``), each the farthest (Euclidean) from the
    ``reference`` rows and the rows picked before it; returns (row, distance at pick)."""
    idx = np.arange(features.shape[0]) if candidates is None else np.asarray(candidates)
    if idx.size == 0 or k <= 0:
        return []
    x = features[idx]
    nearest = np.full(idx.size, np.inf)
    first: int | None = None
    if reference is not None and reference.shape[0]:
        step_ = max(1, 4_000_000 // (idx.size * max(x.shape[1], 1)))  # bounded memory per block
        for start in range(0, reference.shape[0], step_):
            block = reference[start : start + step_]
            d = np.sqrt(((x[:, None, :] - block[None, :, :]) ** 2).sum(axis=2))
            nearest = np.minimum(nearest, d.min(axis=1))
    else:  # nothing labelled yet: start from the case nearest the centre, then go outwards
        first = int(np.argmin(((x - x.mean(axis=0)) ** 2).sum(axis=1)))
    picks: list[tuple[int, float]] = []
    taken = np.zeros(idx.size, dtype=bool)
    for step in range(min(k, idx.size)):
        j = first if step == 0 and first is not None else int(np.argmax(np.where(taken, -1.0, nearest)))
        taken[j] = True
        picks.append((int(idx[j]), float(nearest[j])))
        nearest = np.minimum(nearest, np.sqrt(((x - x[j]) ** 2).sum(axis=1)))
    return picks


def select(
    strategy: str,
    budget: int,
    scores: NDArray[np.float64],
    thresholds: NDArray[np.float64],
    strata: Sequence[str],
    features: NDArray[np.float64] | None = None,
    labelled_features: NDArray[np.float64] | None = None,
    finding_scores: NDArray[np.float64] | None = None,
    seed: int = 0,
) -> list[Pick]:
    """Pick up to ``budget`` candidates (see the module docstring); ``features`` are standardised vectors
    (required by ``diversity`` and ``hybrid``); ``finding_scores`` is (cases × findings), default the
    score."""
    if strategy not in STRATEGIES:
        raise Invalid(f"strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if budget < 1:
        raise Invalid(f"--budget must be at least 1, got {budget}")
    n = scores.size
    if strategy in ("diversity", "hybrid") and features is None:
        raise Invalid(f"strategy {strategy!r} needs feature vectors")
    fs = scores[:, None] if finding_scores is None else finding_scores
    distance_to_op = np.abs(_logit(scores) - _logit(thresholds))
    margin = np.abs(2 * fs - 1).min(axis=1)
    entropy = _entropy_bits(fs).sum(axis=1)
    rng = np.random.default_rng(seed)
    random_key = rng.random(n)
    levels = sorted(set(strata))
    members = {lv: np.flatnonzero(np.asarray(strata) == lv) for lv in levels}
    quotas = allocate([members[lv].size for lv in levels], budget)
    picks: list[Pick] = []
    picked_features: list[NDArray[np.float64]] = []
    for lv, quota in zip(levels, quotas, strict=True):
        if quota == 0:
            continue
        idx = members[lv]
        if strategy == "uncertainty":
            order = idx[np.argsort(distance_to_op[idx], kind="stable")][:quota]
            picks += [
                Pick(
                    int(i),
                    float(-distance_to_op[i]),
                    f"score {scores[i]:.3f} near the operating point {thresholds[i]:.3f} "
                    f"(logit distance {distance_to_op[i]:.2f}); stratum {lv}",
                )
                for i in order
            ]
        elif strategy == "margin":
            order = idx[np.argsort(margin[idx], kind="stable")][:quota]
            picks += [
                Pick(
                    int(i),
                    float(1 - margin[i]),
                    f"smallest margin {margin[i]:.3f} between the classes; stratum {lv}",
                )
                for i in order
            ]
        elif strategy == "entropy":
            order = idx[np.argsort(-entropy[idx], kind="stable")][:quota]
            picks += [
                Pick(int(i), float(entropy[i]), f"entropy {entropy[i]:.3f} bits; stratum {lv}") for i in order
            ]
        elif strategy == "random":
            order = idx[np.argsort(random_key[idx], kind="stable")][:quota]
            picks += [
                Pick(int(i), float(random_key[i]), f"random (seed {seed}); stratum {lv}") for i in order
            ]
        else:
            assert features is not None
            pool = idx
            if strategy == "hybrid":
                pool = idx[np.argsort(distance_to_op[idx], kind="stable")][: 3 * quota]
            refs = [r for r in (labelled_features, *(f[None, :] for f in picked_features)) if r is not None]
            reference = np.vstack(refs) if refs else None
            for i, dist in k_centre_greedy(features, quota, reference, pool):
                picked_features.append(features[i])
                extra = f", score {scores[i]:.3f} near the operating point" if strategy == "hybrid" else ""
                what = "farthest from every labelled or picked case" if reference is not None else "core-set"
                picks.append(
                    Pick(
                        int(i),
                        dist if math.isfinite(dist) else 1e9,
                        f"k-centre: {what} (distance {dist:.2f}){extra}; stratum {lv}",
                    )
                )
    return picks
