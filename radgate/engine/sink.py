"""The plug-in point for what follows a stored result: :class:`ResultSink`.

A sink is called inside the transaction that stores the prediction and its policy decision, after the row
is flushed: whatever it records (a worklist entry, a notification row) commits atomically with the result,
and an exception from it rolls both back so the job is retried. Sinks only write to the database; building
files and sending happen after the commit, in their own workers (the engine itself records a publish intent
for each released result, which the results worker turns into SR + GSPS in the outbox). A sink sees every
result with its :class:`radgate.policy.Decision` and must respect it: silent, shadow and withheld results
are never shown nor sent.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from sqlalchemy.orm import Session

from radgate.engine.tables import Prediction
from radgate.policy import Decision

__all__ = ["ResultSink"]


@runtime_checkable
class ResultSink(Protocol):
    """Receives every stored prediction with the policy's decision."""

    def on_result(self, session: Session, prediction: Prediction, decision: Decision) -> None:
        """Record what should follow (in ``session``'s transaction; no network I/O, no file writes)."""
        ...
