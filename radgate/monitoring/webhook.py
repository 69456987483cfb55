"""Webhook delivery of alert changes: signed JSON POSTs from a durable queue, with retries and backoff.

Each message is a row in ``alert_deliveries`` written in the same transaction as the alert change it
reports; :func:`deliver_pending` sends the due ones after that commit. The body is the exact JSON stored in
the row; the header ``X-Radgate-Signature: sha256=<hex>`` is HMAC-SHA256 of the body with
``monitoring.webhook_secret`` (verify with ``hmac.compare_digest``); ``X-Radgate-Event`` names the event and
``X-Radgate-Delivery`` the row id (receivers deduplicate on it: a message may arrive twice if the answer
is lost). A non-2xx answer or a network error is retried after ``webhook_backoff_s`` × 2^(attempt−1), up to
``webhook_max_attempts``; then the row is marked failed and logged.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from radgate.clock import utcnow
from radgate.config import MonitoringSettings
from radgate.db import Database
from radgate.monitoring.tables import AlertDeliveryRow

__all__ = ["AlertEvent", "DeliveryStatus", "deliver_pending", "enqueue", "sign"]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Radgate-Signature"


class AlertEvent(enum.Enum):
    OPENED = "opened"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class DeliveryStatus(enum.Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of ``body`` under ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def enqueue(
    session: Session,
    alert_id: int,
    event: AlertEvent,
    alert: dict[str, Any],
    settings: MonitoringSettings,
    now: dt.datetime,
) -> None:
    body = json.dumps(
        {"event": event.value, "alert": alert, "notice": "radgate monitoring; not a medical device"},
        sort_keys=True,
        default=str,
    )
    session.add(
        AlertDeliveryRow(
            alert_id=alert_id,
            event=event.value,
            url=settings.webhook_url,
            payload=body,
            status=DeliveryStatus.PENDING.value,
            attempts=0,
            max_attempts=settings.webhook_max_attempts,
            available_at=now,
            created_at=now,
        )
    )


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the configured URL)
        if not 200 <= response.status < 300:
            raise urllib.error.HTTPError(url, response.status, response.reason, response.headers, None)


def deliver_pending(db: Database, settings: MonitoringSettings, now: dt.datetime | None = None) -> int:
    """Send every due message once; returns how many were delivered."""
    now = now or utcnow()
    with db.session() as s:
        due = s.execute(
            select(
                AlertDeliveryRow.id, AlertDeliveryRow.url, AlertDeliveryRow.payload, AlertDeliveryRow.event
            )
            .where(
                AlertDeliveryRow.status == DeliveryStatus.PENDING.value, AlertDeliveryRow.available_at <= now
            )
            .order_by(AlertDeliveryRow.id)
        ).all()
    delivered = 0
    for delivery_id, url, payload, event in due:
        body = payload.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "radgate-monitoring",
            "X-Radgate-Event": event,
            "X-Radgate-Delivery": str(delivery_id),
        }
        if settings.webhook_secret:
            headers[SIGNATURE_HEADER] = sign(settings.webhook_secret, body)
        error: str | None = None
        try:
            _post(url, body, headers, settings.webhook_timeout_s)
        except urllib.error.HTTPError as exc:
            error = f"HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        with db.session() as s:
            row = s.get(AlertDeliveryRow, delivery_id)
            if row is None or row.status != DeliveryStatus.PENDING.value:
                continue
            row.attempts += 1
            if error is None:
                row.status, row.delivered_at, row.last_error = DeliveryStatus.DELIVERED.value, utcnow(), None
                delivered += 1
                log.info("webhook %d (alert %d %s) delivered", row.id, row.alert_id, row.event)
            elif row.attempts >= row.max_attempts:
                row.status, row.last_error = DeliveryStatus.FAILED.value, error
                log.error(
                    "webhook %d (alert %d) failed after %d attempts: %s",
                    row.id,
                    row.alert_id,
                    row.attempts,
                    error,
                )
            else:
                delay = settings.webhook_backoff_s * 2 ** (row.attempts - 1)
                row.available_at = now + dt.timedelta(seconds=delay)
                row.last_error = error
                log.warning("webhook %d (alert %d): %s; retry in %.0f s", row.id, row.alert_id, error, delay)
    return delivered
