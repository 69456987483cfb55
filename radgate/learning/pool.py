"""Pooling with peer sites: per-site and pooled AUC, sensitivity and specificity with CIs, and heterogeneity.

Each input is one site's de-identified export of predictions and labels (a CSV with a score and a 0/1
label column; ``radgate export dataset --labels`` or ``radgate predictions export`` joined with the truth).
Per site: AUC with DeLong's interval, sensitivity and specificity at the threshold with Wilson intervals.
Pooled:

- AUC: inverse-variance meta-analysis of the per-site AUCs (DeLong variances), fixed effect and
  DerSimonian–Laird random effects (DerSimonian & Laird 1986), with Cochran's Q (df = k − 1, χ² p-value),
  :math:`I^2 = \\max(0, (Q - df)/Q)` (Higgins & Thompson 2002) and :math:`\\tau^2`.
- Sensitivity and specificity: the same random-effects model on the logit scale (variance
  :math:`1/(x + ½) + 1/(n - x + ½)`, Haldane's correction), back-transformed; and the counts summed over
  sites with a Wilson interval (what one site with all the cases would report).
- The AUC of all cases together (DeLong), beside the meta-analytic estimate (it mixes sites' case mixes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps

from radgate.errors import Invalid, RadgateError
from radgate.stats.proportions import wilson
from radgate.stats.roc import delong
from radgate.validation.cases import CaseSet, read_cases_csv

__all__ = ["MetaAnalysis", "meta_analysis", "pool_sites", "pool_files"]


@dataclass(frozen=True)
class MetaAnalysis:
    k: int
    fixed: float
    fixed_se: float
    fixed_ci: tuple[float, float]
    random: float
    random_se: float
    random_ci: tuple[float, float]
    q: float
    df: int
    q_p: float
    i2: float
    tau2: float

    def as_dict(self, transform: Any = None) -> dict[str, Any]:
        t = transform or (lambda v: v)
        return {
            "k": self.k,
            "fixed": t(self.fixed),
            "fixed_ci": [t(self.fixed_ci[0]), t(self.fixed_ci[1])],
            "random": t(self.random),
            "random_ci": [t(self.random_ci[0]), t(self.random_ci[1])],
            "cochran_q": self.q,
            "df": self.df,
            "q_p": self.q_p,
            "i2": self.i2,
            "tau2": self.tau2,
        }


def meta_analysis(effects: ArrayLike, variances: ArrayLike, confidence: float = 0.95) -> MetaAnalysis:
    """Inverse-variance fixed and DerSimonian–Laird random-effects pooling with Cochran's Q and I²."""
    y = np.asarray(effects, dtype=np.float64)
    v = np.asarray(variances, dtype=np.float64)
    if y.size < 2 or y.size != v.size:
        raise Invalid(f"pooling needs at least two sites with an estimate and a variance, got {y.size}")
    if np.any(~np.isfinite(v)) or np.any(v <= 0):
        raise Invalid("every site's variance must be positive (a site with perfect separation has none)")
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    w = 1.0 / v
    fixed = float(np.sum(w * y) / np.sum(w))
    fixed_se = math.sqrt(1.0 / float(np.sum(w)))
    q = float(np.sum(w * (y - fixed) ** 2))
    df = y.size - 1
    c = float(np.sum(w) - np.sum(w**2) / np.sum(w))
    tau2 = max(0.0, (q - df) / c) if c > 0 else 0.0
    wr = 1.0 / (v + tau2)
    random = float(np.sum(wr * y) / np.sum(wr))
    random_se = math.sqrt(1.0 / float(np.sum(wr)))
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    return MetaAnalysis(
        int(y.size),
        fixed,
        fixed_se,
        (fixed - z * fixed_se, fixed + z * fixed_se),
        random,
        random_se,
        (random - z * random_se, random + z * random_se),
        q,
        df,
        float(sps.chi2.sf(q, df)),
        i2,
        tau2,
    )


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _logit_rate(x: int, n: int) -> tuple[float, float]:
    a, b = x + 0.5, n - x + 0.5
    return math.log(a / b), 1.0 / a + 1.0 / b


def _rate(x: int, n: int, confidence: float) -> dict[str, Any]:
    if n == 0:
        return {"estimate": None, "ci": None, "successes": 0, "trials": 0}
    p = wilson(x, n, confidence)
    return {"estimate": p.estimate, "ci": list(p.ci), "successes": x, "trials": n}


def pool_sites(
    sites: Sequence[tuple[str, CaseSet]], threshold: float, confidence: float = 0.95
) -> dict[str, Any]:
    """Per-site and pooled figures (see the module docstring) for ``(site name, cases)`` pairs."""
    if len(sites) < 2:
        raise Invalid(f"pooling needs at least two sites, got {len(sites)}")
    rows = []
    aucs, auc_vars, sens, spec = [], [], [], []
    all_y, all_s = [], []
    tot = {"tp": 0, "pos": 0, "tn": 0, "neg": 0}
    for name, cases in sites:
        y = cases.labels.astype(bool)
        s = cases.scores
        pos, neg = int(y.sum()), int(y.size - y.sum())
        calls = s >= threshold
        tp, tn = int(np.sum(calls & y)), int(np.sum(~calls & ~y))
        row: dict[str, Any] = {"site": name, "n": int(y.size), "positives": pos, "negatives": neg}
        try:
            a = delong(y, s, confidence)
        except RadgateError as exc:
            row |= {"auc": None, "auc_ci": None, "note": str(exc)}
        else:
            row |= {"auc": a.auc, "auc_ci": list(a.ci), "auc_se": a.se}
            if a.variance > 0:
                aucs.append(a.auc)
                auc_vars.append(a.variance)
            else:
                row["note"] = "DeLong variance 0 (perfect separation): left out of the AUC meta-analysis"
        row["sensitivity"] = _rate(tp, pos, confidence)
        row["specificity"] = _rate(tn, neg, confidence)
        if pos:
            sens.append(_logit_rate(tp, pos))
        if neg:
            spec.append(_logit_rate(tn, neg))
        tot["tp"] += tp
        tot["pos"] += pos
        tot["tn"] += tn
        tot["neg"] += neg
        all_y.append(y)
        all_s.append(s)
        rows.append(row)
    y_all, s_all = np.concatenate(all_y), np.concatenate(all_s)
    pooled_auc = delong(y_all, s_all, confidence)
    out: dict[str, Any] = {
        "threshold": threshold,
        "confidence": confidence,
        "sites": rows,
        "n": int(y_all.size),
        "auc_all_cases": {"auc": pooled_auc.auc, "ci": list(pooled_auc.ci)},
        "auc_meta": meta_analysis(aucs, auc_vars, confidence).as_dict() if len(aucs) >= 2 else None,
        "sensitivity_all_cases": _rate(tot["tp"], tot["pos"], confidence),
        "specificity_all_cases": _rate(tot["tn"], tot["neg"], confidence),
    }
    for key, values in (("sensitivity_meta", sens), ("specificity_meta", spec)):
        out[key] = (
            meta_analysis([e for e, _ in values], [v for _, v in values], confidence).as_dict(_expit)
            if len(values) >= 2
            else None
        )
    out["heterogeneity"] = (
        {k: out["auc_meta"][k] for k in ("cochran_q", "df", "q_p", "i2", "tau2")}
        if out["auc_meta"] is not None
        else None
    )
    return out


def pool_files(
    paths: Sequence[Path],
    threshold: float,
    score_col: str = "score",
    label_col: str = "label",
    confidence: float = 0.95,
) -> dict[str, Any]:
    """:func:`pool_sites` on CSV files, one per site (the site is named after the file)."""
    sites = []
    seen: dict[str, int] = {}
    for path in paths:
        name = path.stem
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}-{seen[name]}"
        sites.append((name, read_cases_csv(path, score_col, label_col)))
    return pool_sites(sites, threshold, confidence)
