"""The results outbox as use cases: list, retry the failed, send what is due, the configured destinations."""

from __future__ import annotations

from collections.abc import Sequence

from radgate.clock import utcnow
from radgate.config import Settings
from radgate.db import Database
from radgate.errors import Invalid
from radgate.results.outbox import DeliveryReport, deliver_pending, list_outbox, results_store, retry
from radgate.results.send import Destination, destinations_from_settings
from radgate.results.tables import OUTBOX_STATUSES, OutboxItem

__all__ = ["configured_destinations", "outbox_rows", "retry_failed", "send_due"]


def outbox_rows(
    db: Database, status: str | None = None, destination: str | None = None, limit: int = 50
) -> list[OutboxItem]:
    """Outbox rows, newest first, optionally of one status (``pending``, ``sending``, ``sent``, ``failed``)
    and/or one destination."""
    if status is not None and status not in OUTBOX_STATUSES:
        raise Invalid(f"--status {status!r} is not one of {', '.join(OUTBOX_STATUSES)}.")
    return list_outbox(db, status=status, destination=destination, limit=limit)


def retry_failed(db: Database, ids: Sequence[int] = (), destination: str | None = None) -> int:
    """Give failed rows (all, by id, or of one destination) a fresh set of attempts from now."""
    return retry(db, utcnow(), ids=ids, destination=destination)


def configured_destinations(settings: Settings) -> list[Destination]:
    """The destinations the configuration names (``results.send_to``, ``results.folder_destination``)."""
    try:
        return destinations_from_settings(settings)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc


def send_due(settings: Settings, db: Database) -> tuple[DeliveryReport, list[Destination]]:
    """Send every due row to the configured destinations now; returns what happened and to where."""
    destinations = configured_destinations(settings)
    report = deliver_pending(
        db,
        destinations,
        utcnow(),
        results_dir=results_store(settings.data_dir),
        backoff_s=settings.results.outbox_backoff_s,
    )
    return report, destinations
