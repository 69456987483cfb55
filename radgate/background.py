"""Background loops: one small base class for the gateway's periodic services.

The assembler, the pixel checker and the outbox worker each run ``run_once`` on a thread until stopped, and
must survive any exception in a pass (log it, try again next interval). :class:`PeriodicService` holds that
loop once; a subclass says what one pass does and, if it likes, how long to wait before the next.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod

__all__ = ["PeriodicService"]

log = logging.getLogger(__name__)


class PeriodicService(ABC):
    """Calls :meth:`tick` on a daemon thread every :meth:`wait` until :meth:`stop`."""

    thread_name = "radgate-periodic"
    interval_s = 1.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def tick(self) -> None:
        """One pass of work."""

    def wait(self) -> None:
        """Block until the next pass is due (default: ``interval_s``, or until stopped)."""
        self._stop.wait(self.interval_s)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()  # ends the default wait; subclasses waiting on their own event set it first
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.wait()
            if self._stop.is_set():
                break
            try:
                self.tick()
            except Exception:
                log.exception("%s: a pass failed; trying again at the next interval", self.thread_name)
