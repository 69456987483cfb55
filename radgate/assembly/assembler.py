"""Deciding that a series (and its study) is complete.

DICOM has no "end of study" message on C-STORE or STOW-RS, so radgate uses the rule PACS routers use:

- a series is **complete** when its expected instance count is known and reached (from the header's
  NumberOfSeriesRelatedInstances where a sender fills it, or set through ``set_expected``), or
  after ``assembly.quiet_period_s`` seconds without a new instance when no count is known;
- a series whose known count is *not* reached by the end of the quiet period is **incomplete** and follows
  ``assembly.incomplete_policy``: ``wait`` (keep waiting, reported as waiting), ``process_partial``
  (status ``incomplete``, processed with what arrived) or ``skip`` (status ``incomplete``, not processed);
- a study is complete when every series in it is complete or incomplete and the quiet period has passed.

An instance that arrives after completion re-opens the series and study (the store marks them) and the
series completes again later; nothing is dropped. Completion calls each registered
:class:`SeriesCompleteHook` inside the same transaction, so the work it enqueues is committed atomically with
the status change.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from radgate.background import PeriodicService
from radgate.clock import utcnow
from radgate.config import Settings
from radgate.db import Database, Series, Study

__all__ = ["Assembler", "AssemblyReport", "SeriesCompleteHook", "set_expected"]

log = logging.getLogger(__name__)


def set_expected(db: Database, SeriesInstanceUID: str, count: int) -> None:
    """Record how many instances a series will have (from a worklist, an order, or an operator).

    The running assembler sees it on its next pass: the series completes as soon as the count is reached,
    or is handled by ``assembly.incomplete_policy`` when the quiet period ends first.
    """
    if count < 1:
        raise ValueError(f"Expected instance count must be at least 1, got {count}.")
    with db.session() as s:
        series = s.get(Series, SeriesInstanceUID)
        if series is None:
            raise LookupError(f"No series {SeriesInstanceUID} has been received.")
        series.expected_instances = count


class SeriesCompleteHook(Protocol):
    """Called inside the assembler's transaction when a series completes (fully or partially)."""

    def __call__(self, session: Session, SeriesInstanceUID: str, partial: bool) -> None: ...


@dataclass
class AssemblyReport:
    completed: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    studies_completed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.completed or self.partial or self.skipped or self.studies_completed)


class Assembler(PeriodicService):
    thread_name = "radgate-assembler"

    def __init__(
        self,
        settings: Settings,
        db: Database,
        hooks: list[SeriesCompleteHook] | None = None,
        lock: threading.Lock | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.hooks: list[SeriesCompleteHook] = list(hooks or [])
        self.quiet = timedelta(seconds=settings.assembly.quiet_period_s)
        self.policy = settings.assembly.incomplete_policy
        # Shared with the instance store so a series cannot complete while an instance is being indexed.
        self.lock = lock or threading.Lock()
        self.interval_s = settings.assembly.poll_interval_s
        super().__init__()

    def set_expected(self, SeriesInstanceUID: str, count: int) -> None:
        set_expected(self.db, SeriesInstanceUID, count)

    def run_once(self, now: datetime | None = None) -> AssemblyReport:
        """One pass over receiving series and studies; returns what changed."""
        now = now or utcnow()
        report = AssemblyReport()
        with self.lock, self.db.session() as s:
            for series in s.scalars(select(Series).where(Series.status == "receiving")).all():
                self._check_series(s, series, now, report)
            for study in s.scalars(select(Study).where(Study.status.in_(("receiving", "reopened")))).all():
                self._check_study(s, study, now, report)
        return report

    def _check_series(self, s: Session, series: Series, now: datetime, report: AssemblyReport) -> None:
        quiet_over = now - series.last_received >= self.quiet
        expected = series.expected_instances
        if expected is not None and series.num_instances >= expected:
            self._complete(s, series, now, report, partial=False)
            return
        if not quiet_over:
            return
        if expected is None:
            self._complete(s, series, now, report, partial=False)
            return
        missing = expected - series.num_instances
        note = f"{series.num_instances} of {expected} expected instances received ({missing} missing)"
        if self.policy == "wait":
            if series.note != f"waiting: {note}":
                series.note = f"waiting: {note}"
                log.info("Series %s incomplete, waiting: %s", series.SeriesInstanceUID, note)
            report.waiting.append(series.SeriesInstanceUID)
        elif self.policy == "skip":
            series.status = "incomplete"
            series.completed_at = now
            series.note = f"skipped by policy: {note}"
            report.skipped.append(series.SeriesInstanceUID)
            log.warning("Series %s incomplete, skipped by policy: %s", series.SeriesInstanceUID, note)
        else:
            series.note = f"processed partially: {note}"
            self._complete(s, series, now, report, partial=True)
            log.warning("Series %s incomplete, processed partially: %s", series.SeriesInstanceUID, note)

    def _complete(
        self, s: Session, series: Series, now: datetime, report: AssemblyReport, partial: bool
    ) -> None:
        series.status = "incomplete" if partial else "complete"
        series.completed_at = now
        (report.partial if partial else report.completed).append(series.SeriesInstanceUID)
        for hook in self.hooks:
            hook(s, series.SeriesInstanceUID, partial)

    def _check_study(self, s: Session, study: Study, now: datetime, report: AssemblyReport) -> None:
        if now - study.last_received < self.quiet:
            return
        states = s.scalars(
            select(Series.status).where(Series.StudyInstanceUID == study.StudyInstanceUID)
        ).all()
        if states and all(state in ("complete", "incomplete") for state in states):
            study.status = "complete"
            study.completed_at = now
            report.studies_completed.append(study.StudyInstanceUID)

    # ------------------------------------------------------------- background
    def tick(self) -> None:
        report = self.run_once()
        if report:
            log.info(
                "Assembly: %d series complete, %d partial, %d skipped, %d studies complete",
                len(report.completed),
                len(report.partial),
                len(report.skipped),
                len(report.studies_completed),
            )
