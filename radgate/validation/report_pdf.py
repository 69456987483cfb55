"""Text pages, then vector figures, as one PDF: the PDF renderer of the validation and monitoring reports.

A report gives its lines as ``(kind, text)`` with kind ``h1``, ``h2``, ``text`` or ``warn``; they are set on
A4 pages with the synthetic-data banner on every page when it applies and a page footer, then each figure
follows on its own page (matplotlib ``PdfPages``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from pathlib import Path

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

import radgate

__all__ = ["write_text_pdf"]

_STYLE = {
    "h1": (13.0, "bold", "black"),
    "h2": (10.0, "bold", "#1f4e79"),
    "warn": (8.5, "bold", "#b00020"),
}
_STEP = {"h1": 0.03, "h2": 0.026, "warn": 0.018}


def write_text_pdf(
    path: Path,
    lines: Iterable[tuple[str, str]],
    figures: Iterable[Figure],
    *,
    title: str,
    subject: str,
    footer: str,
    banner: str | None = None,
    text_size: float = 7.5,
    text_step: float = 0.0155,
    text_width: int = 120,
) -> None:
    """Write ``lines`` then ``figures`` to ``path``; ``banner`` (the synthetic notice) tops every page."""
    style = {**_STYLE, "text": (text_size, "normal", "black")}
    step = {**_STEP, "text": text_step}
    with PdfPages(path) as pdf:
        info = pdf.infodict()
        info["Title"], info["Subject"], info["Creator"] = title, subject, f"radgate {radgate.__version__}"
        fig: Figure | None = None
        y = 0.0
        page = 0

        def new_page() -> Figure:
            nonlocal y, page
            page += 1
            f = Figure(figsize=(8.27, 11.69))
            if banner:
                f.text(0.5, 0.985, banner, ha="center", va="top", fontsize=9, color="#b00020", weight="bold")
            f.text(0.5, 0.015, f"{footer} — page {page}", ha="center", fontsize=7, color="grey")
            y = 0.955
            return f

        for kind, text in lines:
            size, weight, color = style[kind]
            wrapped = textwrap.wrap(text, text_width if kind == "text" else 90) or [""]
            if kind == "h2" and fig is not None:
                y -= 0.012
            for i, piece in enumerate(wrapped):
                if fig is None or y < 0.05:
                    if fig is not None:
                        pdf.savefig(fig)
                    fig = new_page()
                fig.text(
                    0.06 if i == 0 else 0.08,
                    y,
                    piece,
                    fontsize=size,
                    weight=weight,
                    color=color,
                    family="monospace" if kind == "text" else "sans-serif",
                    va="top",
                )
                y -= step[kind]
            if kind in ("h1", "h2"):
                y -= 0.006
        if fig is not None:
            pdf.savefig(fig)
        for f in figures:
            pdf.savefig(f)
