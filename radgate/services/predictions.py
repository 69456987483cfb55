"""Results as use cases: export, summary, and running the engine in the foreground."""

from __future__ import annotations

from collections import Counter
from typing import TextIO

from radgate import audit
from radgate.config import Settings
from radgate.db import Database
from radgate.engine import Engine, EngineSummary, export_csv, iter_prediction_rows, summarise
from radgate.policy import Mode
from radgate.routing.deployment import list_deployments

__all__ = ["empty_export_reason", "export_predictions", "run_engine", "summary", "unfinished_work"]


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


def unfinished_work(db: Database) -> str | None:
    """What is not processed yet (series not assembled, jobs, results not published or sent) and how to
    finish it, in one sentence; ``None`` when nothing is left."""
    from radgate.services.processing import pending_work

    return pending_work(db).hint()


def empty_export_reason(db: Database, mode: str | None = None) -> str:
    """Why an export wrote no row, and what to do: no deployment, no routed series (with what is still
    unfinished), or a ``--mode`` filter that matched nothing (with the modes there are)."""
    wanted = None if mode is None else Mode.parse(mode, "--mode").value
    with db.session() as s:
        deployments = list_deployments(s)
        modes = Counter(row["mode"] for row in iter_prediction_rows(s))
    if not deployments:
        return (
            "No deployment exists, so no model has run. Add one (a [[deployments]] table in the config, or "
            "`radgate deployments add NAME --model M --version V`), then run `radgate process`."
        )
    pending = unfinished_work(db)
    if not modes:
        names = ", ".join(d.name for d in deployments)
        if pending:
            return f"No series has been routed to a deployment ({names}) yet: {pending}"
        return (
            f"No series has been routed to a deployment ({names}) yet: nothing has been received. "
            "Send images to `radgate serve`, or `radgate import FOLDER` then `radgate process`."
        )
    if wanted is not None:
        listed = ", ".join(f"{m} ({n})" for m, n in sorted(modes.items()))
        return f"No result has mode {wanted!r}; the modes present are: {listed}. Drop --mode or pick one."
    return pending or "Nothing matched."
