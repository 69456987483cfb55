"""The validation report's figures (matplotlib, Agg): ROC, calibration before/after, subgroup forest plot.

Each function returns a :class:`matplotlib.figure.Figure`; the report embeds it as PNG (base64) in the HTML
and draws the same figure as vector graphics into the PDF.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from radgate.stats import ReliabilityCurve, RocCurve  # noqa: E402

if TYPE_CHECKING:
    from radgate.validation.metrics import ValidationSummary

__all__ = ["calibration_figure", "close_figures", "figure_png_base64", "forest_figure", "roc_figure"]

_SYNTHETIC = "Synthetic demo model — not for clinical use"


def _stamp(fig: Figure, synthetic: bool) -> None:
    if synthetic:
        fig.text(0.5, 0.005, _SYNTHETIC, ha="center", va="bottom", fontsize=8, color="#b00020")


def roc_figure(
    curve: RocCurve, result: ValidationSummary, bootstrap_ci: Sequence[float] | None, synthetic: bool
) -> Figure:
    """Empirical ROC curve with the AUC and its intervals, and the operating point with Wilson error bars."""
    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey", label="chance")
    ax.step(curve.fpr, curve.tpr, where="post", lw=1.6, color="#1f4e79", label="model")
    fpr = 1 - result.specificity
    sp_ci, se_ci = result.specificity_ci, result.sensitivity_ci
    ax.errorbar(
        [fpr],
        [result.sensitivity],
        xerr=[[fpr - (1 - sp_ci[1])], [(1 - sp_ci[0]) - fpr]],
        yerr=[[result.sensitivity - se_ci[0]], [se_ci[1] - result.sensitivity]],
        fmt="o",
        color="#c0392b",
        capsize=3,
        label=f"threshold {result.threshold:g} (Wilson 95% CI)",
    )
    lo, hi = result.auc_ci
    text = f"AUC {result.auc:.3f}\nDeLong 95% CI {lo:.3f}–{hi:.3f}"
    if bootstrap_ci is not None:
        text += f"\nbootstrap 95% CI {bootstrap_ci[0]:.3f}–{bootstrap_ci[1]:.3f}"
    ax.text(
        0.97,
        0.05,
        text,
        ha="right",
        va="bottom",
        transform=ax.transAxes,
        fontsize=9,
        bbox={"boxstyle": "round", "fc": "white", "ec": "#cccccc"},
    )
    ax.set_xlabel("1 − specificity (false-positive fraction)")
    ax.set_ylabel("sensitivity (true-positive fraction)")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_title(f"ROC curve ({result.n_positive} positive, {result.n_negative} negative)")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    _stamp(fig, synthetic)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def calibration_figure(curves: Mapping[str, ReliabilityCurve], synthetic: bool) -> Figure:
    """Reliability diagram: observed fraction positive against mean predicted probability, per curve."""
    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey", label="perfect calibration")
    styles = {
        "before": ("#7f8c8d", "s"),
        "Platt (cross-validated)": ("#1f4e79", "o"),
        "isotonic (cross-validated)": ("#27ae60", "^"),
    }
    for name, curve in curves.items():
        color, marker = styles.get(name, ("#8e44ad", "D"))
        yerr = [curve.observed - curve.observed_ci_low, curve.observed_ci_high - curve.observed]
        ax.errorbar(
            curve.mean_predicted,
            curve.observed,
            yerr=yerr,
            fmt=f"-{marker}",
            ms=4,
            lw=1,
            capsize=2,
            color=color,
            label=name,
        )
    ax.set_xlabel("mean predicted probability (10 equal-width bins)")
    ax.set_ylabel("observed fraction positive (Wilson 95% CI)")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_title("Calibration before and after recalibration")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    _stamp(fig, synthetic)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def forest_figure(result: ValidationSummary, synthetic: bool) -> Figure | None:
    """Subgroup AUCs with DeLong intervals against the overall AUC; insufficient levels in grey."""
    rows = []
    for column, levels in result.subgroups.items():
        for level, sub in levels.items():
            rows.append((f"{column} = {level or '(missing)'}", sub))
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.32 * len(rows)))
    lo, hi = result.auc_ci
    ax.axvspan(lo, hi, color="#1f4e79", alpha=0.12, lw=0)
    ax.axvline(result.auc, color="#1f4e79", lw=1, label=f"overall {result.auc:.3f}")
    for i, (_, sub) in enumerate(reversed(rows)):
        color = "#999999" if sub.insufficient else "#c0392b"
        if sub.auc is not None and sub.auc_ci is not None:
            a, (l_, h_) = sub.auc, sub.auc_ci
            ax.errorbar([a], [i], xerr=[[a - l_], [h_ - a]], fmt="o", color=color, capsize=3, ms=4)
        tag = f"  n+ {sub.n_positive}, n− {sub.n_negative}" + (
            "  insufficient" if sub.insufficient else ""
        )
        ax.text(1.005, i, tag, va="center", fontsize=7, color=color, transform=ax.get_yaxis_transform())
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r[0] for r in reversed(rows)], fontsize=8)
    ax.set_xlim(max(0.0, min(0.5, lo - 0.1)), 1.0)
    ax.set_xlabel("AUC (DeLong 95% CI)")
    ax.set_title("Subgroups")
    ax.legend(loc="lower left", fontsize=8, frameon=False)
    _stamp(fig, synthetic)
    fig.tight_layout(rect=(0, 0.03, 0.8, 1))
    return fig


def figure_png_base64(fig: Figure, dpi: int = 110) -> str:
    """The figure as a base64-encoded PNG (for ``<img src="data:image/png;base64,...">``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def close_figures(figures: Iterable[Figure]) -> None:
    """Release the figures' memory (pyplot keeps a reference to every figure it created)."""
    for fig in figures:
        plt.close(fig)
