"""The plug-in point for what happens to a live result: :class:`ResultSink`.

The results writer (DICOM SR TID 1500 + presentation state, webhook, worklist priority) implements it. A sink
is called inside the transaction that stores the prediction, after the row is flushed: whatever it records
(an outbox row, a worklist entry) commits atomically with the result, and an exception from it rolls both
back so the job is retried. Sinks must therefore only write to the database and leave slow work (network
sends) to their own outbox worker. Silent results never reach a sink: silent means run and log, never shown
nor sent.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from sqlalchemy.orm import Session

from radgate.engine.tables import Prediction

__all__ = ["ResultSink"]


@runtime_checkable
class ResultSink(Protocol):
    """Receives every live prediction as it is stored."""

    def on_live_result(self, session: Session, prediction: Prediction) -> None:
        """Record what should follow from ``prediction`` (in ``session``'s transaction; no network I/O)."""
        ...
