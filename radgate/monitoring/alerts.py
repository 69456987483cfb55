"""Alerts: one open alert per rule x deployment x scope, acknowledged and resolved with a note by a person.

:func:`reconcile` turns a run's findings into alert rows in one transaction, with a webhook intent row
(``alert_deliveries``) for every alert it opens; the messages go out after the commit
(:func:`radgate.monitoring.webhook.deliver_pending`). A finding opens a new alert only for periods after the
last one a resolved alert for the same key covered, so re-running monitoring over the same months changes
nothing, and a problem that comes back after it was resolved opens a fresh alert.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from radgate import audit
from radgate.clock import utcnow
from radgate.config import MonitoringSettings
from radgate.db import Database
from radgate.errors import Conflict, Invalid, NotFound
from radgate.monitoring.rules.base import Finding
from radgate.monitoring.tables import AlertRow, MonitoringRunRow
from radgate.monitoring.webhook import AlertEvent, enqueue

if TYPE_CHECKING:
    from radgate.monitoring.service import MonitoringSummary

__all__ = [
    "Alert",
    "AlertStatus",
    "acknowledge",
    "alert_lines",
    "get_alert",
    "list_alerts",
    "reconcile",
    "resolve",
]

log = logging.getLogger(__name__)


class AlertStatus(enum.Enum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Alert:
    id: int
    rule: str
    deployment: str
    site: str
    scope: str
    period: str
    last_period: str
    detected_on: str
    change_point: str | None
    status: AlertStatus
    summary: str
    detail: dict[str, Any]
    firings: int
    opened_at: dt.datetime
    updated_at: dt.datetime
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    acknowledge_note: str | None
    resolved_at: dt.datetime | None
    resolved_by: str | None
    resolve_note: str | None

    @classmethod
    def from_row(cls, row: AlertRow) -> Alert:
        return cls(
            row.id,
            row.rule,
            row.deployment,
            row.site,
            row.scope,
            row.period,
            row.last_period,
            row.detected_on,
            row.change_point,
            AlertStatus(row.status),
            row.summary,
            json.loads(row.detail),
            row.firings,
            row.opened_at,
            row.updated_at,
            row.acknowledged_at,
            row.acknowledged_by,
            row.acknowledge_note,
            row.resolved_at,
            row.resolved_by,
            row.resolve_note,
        )

    def as_dict(self) -> dict[str, Any]:
        def ts(value: dt.datetime | None) -> str | None:
            return None if value is None else value.isoformat(timespec="seconds")

        return {
            "id": self.id,
            "rule": self.rule,
            "deployment": self.deployment,
            "site": self.site,
            "scope": self.scope,
            "period": self.period,
            "last_period": self.last_period,
            "detected_on": self.detected_on,
            "change_point": self.change_point,
            "opened_at": ts(self.opened_at),
            "updated_at": ts(self.updated_at),
            "status": self.status.value,
            "summary": self.summary,
            "detail": self.detail,
            "firings": self.firings,
            "acknowledged_at": ts(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
            "acknowledge_note": self.acknowledge_note,
            "resolved_at": ts(self.resolved_at),
            "resolved_by": self.resolved_by,
            "resolve_note": self.resolve_note,
        }


def _key(rule: str, deployment: str, scope: str) -> str:
    return f"{rule}|{deployment}|{scope}"


def reconcile(
    db: Database,
    findings: Sequence[Finding],
    settings: MonitoringSettings,
    summary: MonitoringSummary | None,
    now: dt.datetime | None = None,
) -> tuple[list[Alert], list[Alert]]:
    """Open or extend alerts for ``findings``; store the run's summary; queue webhook messages. One commit."""
    now = now or utcnow()
    grouped: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        grouped[_key(f.rule, f.deployment, f.scope)].append(f)
    opened: list[AlertRow] = []
    updated: list[AlertRow] = []
    with db.session() as s:
        for key, items in sorted(grouped.items()):
            items.sort(key=lambda f: (f.period, f.detected_on))
            first = items[0]
            current = s.scalars(select(AlertRow).where(AlertRow.open_key == key)).first()
            if current is not None:
                newer = [f for f in items if f.period > current.last_period]
                if newer:
                    current.last_period = newer[-1].period
                    current.firings += len(newer)
                    current.updated_at = now
                    updated.append(current)
                continue
            resolved = s.scalars(
                select(AlertRow)
                .where(
                    AlertRow.rule == first.rule,
                    AlertRow.deployment == first.deployment,
                    AlertRow.scope == first.scope,
                    AlertRow.status == AlertStatus.RESOLVED.value,
                )
                .order_by(AlertRow.last_period.desc())
            ).first()
            fresh = [f for f in items if resolved is None or f.period > resolved.last_period]
            if not fresh:
                continue
            head = fresh[0]
            row = AlertRow(
                rule=head.rule,
                deployment=head.deployment,
                site=head.site,
                scope=head.scope,
                period=head.period,
                last_period=fresh[-1].period,
                detected_on=head.detected_on.isoformat(),
                change_point=head.change_point.isoformat() if head.change_point else None,
                status=AlertStatus.OPEN.value,
                open_key=key,
                summary=head.summary,
                detail=json.dumps(head.detail, default=str),
                firings=len(fresh),
                opened_at=now,
                updated_at=now,
            )
            s.add(row)
            s.flush()
            opened.append(row)
            if settings.webhook_url:
                enqueue(s, row.id, AlertEvent.OPENED, Alert.from_row(row).as_dict(), settings, now)
        if summary is not None:
            s.add(
                MonitoringRunRow(
                    started_at=now,
                    finished_at=utcnow(),
                    until=summary.until,
                    predictions=summary.predictions,
                    alerts_opened=len(opened),
                    summary=summary.to_json(),
                )
            )
        s.flush()
        return [Alert.from_row(r) for r in opened], [Alert.from_row(r) for r in updated]


def list_alerts(
    db: Database, status: AlertStatus | None = None, deployment: str | None = None
) -> list[Alert]:
    with db.session() as s:
        q = select(AlertRow).order_by(AlertRow.opened_at, AlertRow.id)
        if status is not None:
            q = q.where(AlertRow.status == status.value)
        if deployment is not None:
            q = q.where(AlertRow.deployment == deployment)
        return [Alert.from_row(r) for r in s.scalars(q)]


def _row(s: Session, alert_id: int) -> AlertRow:
    row = s.get(AlertRow, alert_id)
    if row is None:
        raise NotFound(f"no alert with id {alert_id}; list them with `radgate alerts list`")
    return row


def get_alert(db: Database, alert_id: int) -> Alert:
    with db.session() as s:
        return Alert.from_row(_row(s, alert_id))


def _note(note: str) -> str:
    text = (note or "").strip()
    if not text:
        raise Invalid("a note is required (--note TEXT): say what was checked or done")
    return text


def acknowledge(
    db: Database,
    alert_id: int,
    note: str,
    by: str,
    settings: MonitoringSettings,
    now: dt.datetime | None = None,
) -> Alert:
    """Mark an open alert as seen by ``by`` with ``note`` (it stays the open alert for its key)."""
    text, now = _note(note), now or utcnow()
    with db.session() as s:
        row = _row(s, alert_id)
        if row.status != AlertStatus.OPEN.value:
            raise Conflict(f"alert {alert_id} is {row.status}; only an open alert can be acknowledged")
        row.status = AlertStatus.ACKNOWLEDGED.value
        row.acknowledged_at, row.acknowledged_by, row.acknowledge_note = now, by, text
        row.updated_at = now
        alert = Alert.from_row(row)
        audit.record(s, by, "alert.acknowledge", str(alert_id), {"rule": row.rule, "note": text})
        if settings.webhook_url:
            enqueue(s, row.id, AlertEvent.ACKNOWLEDGED, alert.as_dict(), settings, now)
    log.info(
        "alert %d (%s, %s, %s) acknowledged by %s", alert.id, alert.rule, alert.deployment, alert.scope, by
    )
    return alert


def resolve(
    db: Database,
    alert_id: int,
    note: str,
    by: str,
    settings: MonitoringSettings,
    now: dt.datetime | None = None,
) -> Alert:
    """Close an open or acknowledged alert; the next firing after its last period opens a new one."""
    text, now = _note(note), now or utcnow()
    with db.session() as s:
        row = _row(s, alert_id)
        if row.status == AlertStatus.RESOLVED.value:
            raise Conflict(
                f"alert {alert_id} was already resolved on {row.resolved_at:%Y-%m-%d} by {row.resolved_by}"
            )
        row.status = AlertStatus.RESOLVED.value
        row.open_key = None
        row.resolved_at, row.resolved_by, row.resolve_note = now, by, text
        row.updated_at = now
        alert = Alert.from_row(row)
        audit.record(s, by, "alert.resolve", str(alert_id), {"rule": row.rule, "note": text})
        if settings.webhook_url:
            enqueue(s, row.id, AlertEvent.RESOLVED, alert.as_dict(), settings, now)
    log.info("alert %d (%s, %s, %s) resolved by %s", alert.id, alert.rule, alert.deployment, alert.scope, by)
    return alert


def latest_summary_json(db: Database) -> str | None:
    """The summary the last monitoring run stored (the dashboard draws it), or None."""
    with db.session() as s:
        row = s.scalars(select(MonitoringRunRow).order_by(MonitoringRunRow.id.desc()).limit(1)).first()
        return None if row is None else row.summary


def alert_lines(alerts: Sequence[Alert]) -> list[str]:
    """One line per alert, oldest period first, for the demo's summary: rule, scope, the month it fired."""
    out = []
    for a in sorted(alerts, key=lambda a: (a.period, a.rule, a.scope)):
        scope = "" if a.scope == "all" else f" [{a.scope}]"
        months = a.period if a.last_period == a.period else f"{a.period} (again until {a.last_period})"
        out.append(f"{a.rule}{scope} fired in {months}: {a.summary}")
    return out
