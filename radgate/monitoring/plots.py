"""Monitoring figures (matplotlib, Agg), drawn from a :class:`~radgate.monitoring.service.DeploymentSummary`.

The same figures serve the dashboard (inline SVG, no external files or scripts) and the report (PNG in the
HTML, vector pages in the PDF). Alerts are drawn as markers in the month they opened.
"""

from __future__ import annotations

import io
from collections import defaultdict
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from radgate.validation.report_plots import figure_png_base64  # noqa: E402

if TYPE_CHECKING:
    from radgate.monitoring.service import DeploymentSummary

__all__ = ["deployment_figures", "figure_png_base64", "figure_svg"]

_SYNTHETIC = "Synthetic demo model — not for clinical use"
_PERFORMANCE = {"auc_drop", "auc_drop_ci", "cusum_sensitivity", "cusum_specificity", "cbpe"}


def _stamp(fig: Figure, synthetic: bool) -> None:
    if synthetic:
        fig.text(0.5, 0.005, _SYNTHETIC, ha="center", va="bottom", fontsize=8, color="#b00020")


def figure_svg(fig: Figure) -> str:
    """The figure as an inline ``<svg>`` element (fonts as paths, so it renders the same offline)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _x(summary: DeploymentSummary) -> tuple[list[str], dict[str, int]]:
    periods = [m.period for m in summary.periods]
    return periods, {p: i for i, p in enumerate(periods)}


def _ticks(ax: object, periods: list[str]) -> None:
    step = max(1, len(periods) // 12)
    ax.set_xticks(range(0, len(periods), step))  # type: ignore[attr-defined]
    ax.set_xticklabels(periods[::step], rotation=45, ha="right", fontsize=7)  # type: ignore[attr-defined]


def _alert_markers(
    ax: object, summary: DeploymentSummary, where: dict[str, int], rules: set[str], y: float
) -> None:
    firsts: dict[tuple[str, str], str] = {}
    for f in summary.findings:
        if f.rule in rules:
            key = (f.rule, f.scope)
            firsts[key] = min(f.period, firsts.get(key, f.period))
    by_period: dict[str, list[str]] = defaultdict(list)
    for (rule, _), period in firsts.items():
        by_period[period].append(rule)
    for period, names in by_period.items():
        if period in where:
            ax.axvline(where[period], color="#b00020", lw=0.8, ls=":")  # type: ignore[attr-defined]
            ax.annotate(  # type: ignore[attr-defined]
                "\n".join(sorted(set(names))),
                (where[period], y),
                fontsize=6,
                color="#b00020",
                rotation=90,
                va="top",
                ha="right",
            )


def auc_figure(summary: DeploymentSummary, synthetic: bool) -> Figure:
    periods, where = _x(summary)
    fig = Figure(figsize=(7.5, 3.4))
    ax = fig.add_subplot()
    xs = [i for i, m in enumerate(summary.periods) if m.auc is not None]
    aucs = [float(summary.periods[i].auc or 0.0) for i in xs]
    lows = [summary.periods[i].auc_ci[0] for i in xs]  # type: ignore[index]
    highs = [summary.periods[i].auc_ci[1] for i in xs]  # type: ignore[index]
    ax.fill_between(xs, lows, highs, color="#1f77b4", alpha=0.18, label="95% DeLong CI")
    ax.plot(xs, aucs, "o-", color="#1f77b4", ms=3, label="AUC (labelled cases)")
    cb = [(i, m.cbpe_auc) for i, m in enumerate(summary.periods) if m.cbpe_auc is not None]
    if cb:
        ax.plot(
            [c[0] for c in cb],
            [c[1] for c in cb],
            "s--",
            color="#ff7f0e",
            ms=3,
            label="CBPE estimate (no labels)",
        )
    base = summary.baseline_metrics.auc
    if base is not None:
        ax.axhline(base, color="black", lw=1, label=f"baseline {base:.3f}")
        ax.axhline(base - 0.02, color="grey", lw=0.8, ls="--", label="baseline − 0.02 (heuristic)")
    _alert_markers(ax, summary, where, _PERFORMANCE, 1.0)
    ax.set_ylim(0.5, 1.0)
    ax.set_ylabel("AUC")
    ax.set_title(f"{summary.deployment} at {summary.site}: AUC per period", fontsize=9)
    _ticks(ax, periods)
    ax.legend(fontsize=6, loc="lower left")
    _stamp(fig, synthetic)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def rates_figure(summary: DeploymentSummary, synthetic: bool) -> Figure:
    periods, where = _x(summary)
    fig = Figure(figsize=(7.5, 3.4))
    ax = fig.add_subplot()
    for name, color in (("sensitivity", "#2ca02c"), ("specificity", "#9467bd")):
        pts = [(i, getattr(m, name), getattr(m, f"{name}_ci")) for i, m in enumerate(summary.periods)]
        pts = [p for p in pts if p[1] is not None]
        xs = [p[0] for p in pts]
        ax.fill_between(xs, [p[2][0] for p in pts], [p[2][1] for p in pts], color=color, alpha=0.15)
        ax.plot(xs, [p[1] for p in pts], "o-", ms=3, color=color, label=f"{name} (95% Wilson)")
        base = getattr(summary.baseline_metrics, name)
        if base is not None:
            ax.axhline(base, color=color, lw=0.8, ls="--")
    flag = [(i, m.flag_rate) for i, m in enumerate(summary.periods) if m.flag_rate is not None]
    ax.plot([f[0] for f in flag], [f[1] for f in flag], "^-", ms=3, color="#d62728", label="flag rate")
    _alert_markers(ax, summary, where, {"cusum_sensitivity", "cusum_specificity", "output_drift"}, 1.0)
    ax.set_ylim(0, 1.0)
    ax.set_title("Sensitivity, specificity (operating point) and flag rate; dashed: baseline", fontsize=9)
    _ticks(ax, periods)
    ax.legend(fontsize=6, loc="lower left")
    _stamp(fig, synthetic)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def drift_figure(summary: DeploymentSummary, synthetic: bool) -> Figure:
    periods, where = _x(summary)
    features = sorted({d["feature"] for d in summary.drift})
    cols = 3
    rows = max(1, (len(features) + cols - 1) // cols)
    fig = Figure(figsize=(7.5, 1.7 * rows + 0.4))
    for k, feature in enumerate(features):
        ax = fig.add_subplot(rows, cols, k + 1)
        pts = [d for d in summary.drift if d["feature"] == feature and d["period"] in where]
        xs = [where[d["period"]] for d in pts]
        ax.plot(xs, [d["distance"] for d in pts], "o-", ms=2, lw=1, color="#1f77b4")
        ax.plot(xs, [d["upper"] for d in pts], "-", lw=0.8, color="grey")
        hot = [d for d in pts if d["drifted"]]
        ax.plot([where[d["period"]] for d in hot], [d["distance"] for d in hot], "o", ms=4, color="#b00020")
        ax.set_title(f"{feature} ({pts[0]['method'] if pts else ''})", fontsize=7)
        ax.tick_params(labelsize=5)
        ax.set_xticks([])
    fig.suptitle("Input drift per feature vs the reference (grey: mean + 3σ band; red: drifted)", fontsize=8)
    _stamp(fig, synthetic)
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    return fig


def scanner_figure(summary: DeploymentSummary, synthetic: bool) -> Figure:
    periods, where = _x(summary)
    scanners = sorted({m["scanner"] for m in summary.scanner_mix})
    fig = Figure(figsize=(7.5, 3.0))
    ax = fig.add_subplot()
    bottom = [0.0] * len(periods)
    for scanner in scanners:
        counts = [0.0] * len(periods)
        for m in summary.scanner_mix:
            if m["scanner"] == scanner and m["period"] in where:
                counts[where[m["period"]]] = m["n"]
        ax.bar(range(len(periods)), counts, bottom=bottom, label=scanner or "unknown")
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    _alert_markers(ax, summary, where, {"new_scanner"}, max(bottom or [1]))
    ax.set_ylabel("cases")
    ax.set_title("Scanner mix (Manufacturer + model) per period", fontsize=9)
    _ticks(ax, periods)
    ax.legend(fontsize=6, loc="upper left")
    _stamp(fig, synthetic)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def cbpe_figure(summary: DeploymentSummary, synthetic: bool) -> Figure:
    fig = Figure(figsize=(7.5, 3.4))
    ax = fig.add_subplot()
    ax.set_aspect("equal")
    pts = [
        (m.auc, m.cbpe_auc, m.period) for m in summary.periods if m.auc is not None and m.cbpe_auc is not None
    ]
    ax.plot([0.5, 1], [0.5, 1], color="grey", lw=0.8)
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=10)
    for a, c, label in pts:
        ax.annotate(label, (a, c), fontsize=6)
    ax.set_xlabel("realised AUC (labels)", fontsize=8)
    ax.set_ylabel("CBPE estimate (no labels)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title("CBPE estimate vs realised AUC per period (assumes P(y|x) unchanged)", fontsize=9)
    ax.set_xlim(0.5, 1)
    ax.set_ylim(0.5, 1)
    _stamp(fig, synthetic)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def deployment_figures(summary: DeploymentSummary, synthetic: bool) -> dict[str, Figure]:
    """Every figure of one deployment, by name (auc, rates, drift, scanners, cbpe)."""
    return {
        "auc": auc_figure(summary, synthetic),
        "rates": rates_figure(summary, synthetic),
        "drift": drift_figure(summary, synthetic),
        "scanners": scanner_figure(summary, synthetic),
        "cbpe": cbpe_figure(summary, synthetic),
    }
