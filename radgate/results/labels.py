"""The words every written object carries: series descriptions, the synthetic-model warning, overlay labels.

radgate is not a medical device, and the bundled model is trained on synthetic phantoms: every object written
for a ``synthetic`` model says so in its Series Description (which every PACS shows in its series list) and
in its content (a TID 4019 parameter in the SR, a text annotation in the GSPS, burnt-in text in the SC).
The texts are plain ASCII (a hyphen, not a dash): they must survive any Specific Character Set a PACS uses,
and DCMTK's ``dcmpschk`` refuses non-ASCII text in LO/ST under the default character repertoire.
"""

from __future__ import annotations

from radgate.results.content import AIResult

__all__ = ["ROUGH_GUIDE", "SYNTHETIC_WARNING", "series_description"]

SYNTHETIC_WARNING = "synthetic demo model - not for clinical use"
ROUGH_GUIDE = "AI heatmap: rough guide, not proof"

_KINDS = {"SR": "AI report", "PR": "AI overlay", "SC": "AI heatmap"}


def series_description(result: AIResult, kind: str) -> str:
    """Series Description (LO, at most 64 characters) of the ``kind`` ("SR", "PR", "SC") series."""
    if kind not in _KINDS:
        raise ValueError(f"Series kind {kind!r} is not one of {', '.join(_KINDS)}.")
    if result.synthetic:
        return f"{_KINDS[kind]}: {SYNTHETIC_WARNING}"
    return f"{_KINDS[kind]}: {result.model_name} {result.model_version}"[:64]
