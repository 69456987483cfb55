"""Drift rules: header features and image statistics of the inputs, and the model's outputs (score
distribution, flag rate).

Image statistics (:mod:`radgate.monitoring.imagestats`: intensity percentiles, RMS contrast, Immerkær's
noise estimate of the model input, measured once per image by the engine) are numeric features
``image_p05`` ... ``image_noise``, compared like the numeric header features (``drift_numeric_method``).

Each complete period after the reference is compared with the whole reference. The threshold for a
distance comes from the reference itself (:func:`radgate.stats.drift.chunk_threshold`: random reference
chunks of the period's size against the rest, mean ± ``drift_sigmas`` σ); the flag rate gets a two-sided
exact binomial test against the reference's rate.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats as sps

from radgate.config import MonitoringSettings
from radgate.monitoring.imagestats import IMAGE_FEATURES
from radgate.monitoring.rules.base import Finding, RuleContext
from radgate.stats.drift import (
    NORMALISING_POWER,
    CategoricalDistance,
    ChunkThreshold,
    NumericDistance,
    chunk_threshold,
    jensen_shannon,
    numeric_distance,
)

Index = NDArray[np.intp]
Codes = NDArray[np.int32]

__all__ = ["DriftPoint", "InputDriftRule", "OutputDriftRule", "feature_drift"]


def _categorical_distance(
    method: CategoricalDistance, k: int, a: NDArray[np.int32], b: NDArray[np.int32]
) -> float:
    p = np.bincount(a, minlength=k).astype(np.float64)
    q = np.bincount(b, minlength=k).astype(np.float64)
    if method is CategoricalDistance.JENSEN_SHANNON:
        return jensen_shannon(p, q)
    keep = (p + q) > 0
    table = np.vstack([p[keep], q[keep]])
    if table.shape[1] < 2:
        return 0.0
    return float(np.sqrt(sps.chi2_contingency(table, correction=False)[0] / table.sum()))


def _bucket(n: int) -> int:
    """Period sizes within about 10% share one learnt band (the band's width changes slowly with n)."""
    if n <= 50:
        return n
    return int(round(1.1 ** round(np.log(n) / np.log(1.1))))


class DriftPoint(dict[str, Any]):
    """One feature in one period: distance, the reference band and whether it drifted (JSON-able)."""


def feature_drift(context: RuleContext, settings: MonitoringSettings) -> list[DriftPoint]:
    """Distances of every configured header feature in every monitored period (drawn on the dashboard)."""
    key = f"feature_drift/{id(settings)}"
    if key not in context.cache:
        context.cache[key] = _feature_drift(context, settings)
    return list(context.cache[key])


def _feature_drift(context: RuleContext, settings: MonitoringSettings) -> list[DriftPoint]:
    cases = context.cases
    ref = np.flatnonzero(context.baseline.mask)
    cat_method = CategoricalDistance(settings.drift_categorical_method)
    num_method = NumericDistance(settings.drift_numeric_method)
    out: list[DriftPoint] = []
    if ref.size < 8:
        return out
    cache: dict[tuple[str, int], ChunkThreshold] = {}
    periods = context.monitored_periods()
    for name in settings.drift_categorical:
        if name not in cases.categorical:
            continue
        column = cases.categorical[name]
        k = max(1, len(column.levels))
        ref_codes = column.codes[ref]
        if np.unique(column.codes).size < 2:
            continue  # one value everywhere (or always missing): nothing can drift
        for period in periods:
            rows = context.rows(period)
            if rows.size < 5:
                continue
            key = (name, _bucket(rows.size))
            if key not in cache:

                def categorical(c: Index, r: Index, rc: Codes = ref_codes, k: int = k) -> float:
                    return _categorical_distance(cat_method, k, rc[c], rc[r])

                cache[key] = chunk_threshold(
                    ref.size,
                    key[1],
                    categorical,
                    settings.drift_chunks,
                    settings.drift_sigmas,
                    seed=zlib.crc32(name.encode()),
                    power=NORMALISING_POWER[cat_method],
                )
            band = cache[key]
            d = _categorical_distance(cat_method, k, ref_codes, column.codes[rows])
            cur = column.codes[rows]
            new_levels = sorted(
                {column.levels[c] for c in np.unique(cur)} - {column.levels[c] for c in np.unique(ref_codes)}
            )
            out.append(_point(name, "categorical", cat_method.value, period.key, d, band, new_levels))
    numeric_features = [(name, "numeric") for name in settings.drift_numeric]
    numeric_features += [(name, "image") for name in IMAGE_FEATURES if name not in settings.drift_numeric]
    for name, kind in numeric_features:
        values = cases.numeric.get(name)
        if values is None:
            continue
        ref_values = values[ref]
        ref_ok = ref_values[~np.isnan(ref_values)]
        if ref_ok.size < 8 or np.unique(ref_ok).size < 2:
            continue
        for period in periods:
            raw = values[context.rows(period)]
            current = raw[~np.isnan(raw)]
            if current.size < 5:
                continue
            key = (name, _bucket(current.size))
            if key not in cache:

                def numeric(c: Index, r: Index, rv: NDArray[np.float64] = ref_ok) -> float:
                    return numeric_distance(rv[c], rv[r], num_method)

                cache[key] = chunk_threshold(
                    ref_ok.size,
                    key[1],
                    numeric,
                    settings.drift_chunks,
                    settings.drift_sigmas,
                    seed=zlib.crc32(name.encode()),
                    power=NORMALISING_POWER[num_method],
                )
            d = numeric_distance(ref_ok, current, num_method)
            out.append(_point(name, kind, num_method.value, period.key, d, cache[key], []))
    return out


def _point(
    feature: str, kind: str, method: str, period: str, d: float, band: ChunkThreshold, new_levels: list[str]
) -> DriftPoint:
    return DriftPoint(
        feature=feature,
        kind=kind,
        method=method,
        period=period,
        distance=round(d, 6),
        mean=round(band.mean, 6),
        upper=round(band.upper, 6),
        lower=round(band.lower, 6),
        chunks=band.chunks,
        drifted=bool(d > band.upper),
        new_levels=new_levels,
    )


class InputDriftRule:
    """Sound (per feature): a header feature's or image statistic's distance from the reference beyond the
    reference's band."""

    name = "input_drift"
    sound = True
    description = (
        "header features and image statistics vs the reference (chi2/Jensen-Shannon, KS/Wasserstein), "
        "mean + 3 sd"
    )

    def __init__(self, settings: MonitoringSettings) -> None:
        self.settings = settings

    def evaluate(self, context: RuleContext) -> list[Finding]:
        periods = {p.key: p for p in context.monitored_periods()}
        out = []
        for point in feature_drift(context, self.settings):
            if not point["drifted"]:
                continue
            period = periods[point["period"]]
            extra = f"; new values: {', '.join(point['new_levels'])}" if point["new_levels"] else ""
            out.append(
                Finding(
                    self.name,
                    context.deployment,
                    context.site,
                    f"feature:{point['feature']}",
                    period.key,
                    period.end,
                    f"{point['feature']} drifted: {point['method']} {point['distance']:.4f} above the "
                    f"reference band's upper limit {point['upper']:.4f}{extra}",
                    dict(point),
                )
            )
        return out


class OutputDriftRule:
    """Sound: the score distribution (KS, reference band) and the flag rate (exact binomial test)."""

    name = "output_drift"
    sound = True
    description = "score distribution (KS vs the reference band) and flag rate (binomial test)"

    def __init__(self, settings: MonitoringSettings) -> None:
        self.settings = settings

    def evaluate(self, context: RuleContext) -> list[Finding]:
        s = self.settings
        cases = context.cases
        ref = np.flatnonzero(context.baseline.mask)
        if ref.size < 8:
            return []
        ref_scores = cases.score[ref]
        ref_rate = float(cases.flag[ref].mean())
        out: list[Finding] = []
        cache: dict[int, ChunkThreshold] = {}
        for period in context.monitored_periods():
            rows = context.rows(period)
            if rows.size < 5:
                continue
            bucket = _bucket(rows.size)
            if bucket not in cache:
                cache[bucket] = chunk_threshold(
                    ref.size,
                    bucket,
                    lambda c, r: numeric_distance(ref_scores[c], ref_scores[r]),
                    s.drift_chunks,
                    s.drift_sigmas,
                    power=NORMALISING_POWER[NumericDistance.KS],
                )
            band = cache[bucket]
            d = numeric_distance(ref_scores, cases.score[rows])
            if d > band.upper:
                out.append(
                    Finding(
                        self.name,
                        context.deployment,
                        context.site,
                        "score",
                        period.key,
                        period.end,
                        f"score distribution drifted: KS {d:.3f} above the reference band's {band.upper:.3f}",
                        {
                            "ks": round(d, 4),
                            "upper": round(band.upper, 4),
                            "mean": round(band.mean, 4),
                            "n": int(rows.size),
                        },
                    )
                )
            flagged = int(cases.flag[rows].sum())
            if 0.0 < ref_rate < 1.0:
                p_value = float(sps.binomtest(flagged, int(rows.size), ref_rate).pvalue)
                if p_value < s.flag_rate_alpha:
                    out.append(
                        Finding(
                            self.name,
                            context.deployment,
                            context.site,
                            "flag_rate",
                            period.key,
                            period.end,
                            f"flag rate {flagged / rows.size:.1%} differs from the reference's "
                            f"{ref_rate:.1%} "
                            f"(binomial test p = {p_value:.2g} < {s.flag_rate_alpha:g})",
                            {
                                "flag_rate": round(flagged / rows.size, 4),
                                "reference_flag_rate": round(ref_rate, 4),
                                "flagged": flagged,
                                "n": int(rows.size),
                                "p_value": p_value,
                                "alpha": s.flag_rate_alpha,
                            },
                        )
                    )
        return out
