"""Results as use cases: export, summary, and running the engine in the foreground."""

from __future__ import annotations

from typing import TextIO

from radgate import audit
from radgate.config import Settings
from radgate.db import Database
from radgate.engine import Engine, EngineSummary, export_csv, summarise
from radgate.policy import Mode

__all__ = ["export_predictions", "run_engine", "summary"]


def export_predictions(
    db: Database, out: TextIO, mode: str | None = None, *, actor: str, destination: str = "stdout"
) -> int:
    """Write one CSV row per (series, deployment) to ``out``; returns the row count. The export is an
    audit entry (who, when, how many rows, where to; UIDs only leave in the file itself)."""
    wanted = None if mode is None else Mode.parse(mode, "--mode").value
    with db.session() as s:
        count = export_csv(s, out, wanted)
        assert isinstance(count, int)
        audit.record(s, actor, "predictions.export", None, {"rows": count, "mode": wanted, "to": destination})
    return count


def summary(db: Database) -> EngineSummary:
    with db.session() as s:
        return summarise(s)


def run_engine(settings: Settings, db: Database, timeout_s: float) -> tuple[int, EngineSummary]:
    """Run queued jobs until none is left (or ``timeout_s``); returns the jobs handled and the summary."""
    handled = Engine(settings, db).run_until_idle(timeout_s)
    return handled, summary(db)
