"""The worklist's priority: AI urgency plus waiting time, with ageing so that no study is starved.

For a study awaiting a read::

    priority = URGENCY_POINTS * urgency + AGEING_POINTS_PER_MINUTE * minutes_waiting

- ``urgency`` is the policy's stored decision (``predictions.urgency``, :func:`radgate.policy.urgency`):
  ``0.5 + 0.5 * score`` for a *released, flagged* result, else 0. Withheld, silent and shadow results have
  urgency 0 and contribute nothing; the worklist never reads their score.
- ``minutes_waiting`` counts from when the study was first received.
- With the defaults (``URGENCY_POINTS = 100``, ``AGEING_POINTS_PER_MINUTE = 1``) a flagged study scoring 0.9
  (urgency 0.95, 95 points) goes straight to the top; an unflagged study gains a point a minute, so after at
  most 100 minutes it ranks above any newly arrived flagged study: waiting time is bounded, nothing starves.
- Ties (same priority) go to the study waiting longer, then to the StudyInstanceUID (a total order, so the
  DOM order is deterministic).
"""

from __future__ import annotations

from datetime import datetime

__all__ = ["AGEING_POINTS_PER_MINUTE", "URGENCY_POINTS", "max_wait_behind_flagged_minutes", "priority"]

URGENCY_POINTS = 100.0
AGEING_POINTS_PER_MINUTE = 1.0


def priority(urgency: float, received_at: datetime, now: datetime) -> float:
    """The priority of a study with the AI ``urgency`` (0..1) first received at ``received_at``."""
    minutes = max((now - received_at).total_seconds(), 0.0) / 60.0
    u = min(max(float(urgency), 0.0), 1.0)
    return URGENCY_POINTS * u + AGEING_POINTS_PER_MINUTE * minutes


def max_wait_behind_flagged_minutes() -> float:
    """The longest an unflagged study can be overtaken by newly arriving flagged studies (minutes)."""
    return URGENCY_POINTS / AGEING_POINTS_PER_MINUTE
