"""The values the policy stage decides with, declared once (highdicom's ``...Values`` style)."""

from __future__ import annotations

import enum

__all__ = ["Aggregation", "IncidentalRule", "Mode", "Release", "ThresholdSource"]


class Mode(enum.StrEnum):
    """A deployment's mode: what happens to its results.

    ``off`` runs nothing; ``silent`` runs and stores, for a silent trial, and shows nothing; ``shadow``
    runs and stores like ``silent`` and is meant for comparisons (a challenger beside its champion);
    ``live`` results are released to people and the PACS, within the validated subgroups.
    """

    OFF = "off"
    SILENT = "silent"
    SHADOW = "shadow"
    LIVE = "live"

    @classmethod
    def parse(cls, value: object, where: str = "mode") -> Mode:
        """The mode named ``value``, or a :class:`radgate.errors.Invalid` naming the allowed ones."""
        from radgate.errors import Invalid

        try:
            return cls(str(value))
        except ValueError:
            raise Invalid(
                f"{where} is {value!r}; expected one of {', '.join(m.value for m in cls)}."
            ) from None

    @property
    def runs(self) -> bool:
        return self is not Mode.OFF


class Release(enum.StrEnum):
    """What the policy did with one result (the export's ``policy`` column)."""

    RELEASED = "released"  # live, inside the validated subgroups: shown and sent
    WITHHELD = "withheld"  # live, outside the validated subgroups: stored, never sent or shown
    SILENT = "silent"
    SHADOW = "shadow"
    OFF = "off"
    RETROSPECTIVE = "retrospective"  # `radgate score --into-db`: a batch score, never sent, never shown


class IncidentalRule(enum.StrEnum):
    """What to do with a model output for a finding the deployment does not declare."""

    REPORT = "report"  # reported like a declared finding
    SUPPRESS = "suppress"  # stored, never shown or sent
    REVIEW_ONLY = "review_only"  # shown to the reviewing radiologist, never sent to the PACS


class Aggregation(enum.StrEnum):
    """How the scores of a series' used instances become the series score."""

    MAX = "max"  # the most suspicious image decides (a finding seen on one view is a finding)


class ThresholdSource(enum.StrEnum):
    """Where an operating threshold came from, stated beside every number computed with it."""

    DEPLOYMENT = "deployment operating point"
    MODEL = "model operating point"
    GIVEN = "given"  # --threshold
    DEFAULT = "default"  # 0.5: no operating point known
