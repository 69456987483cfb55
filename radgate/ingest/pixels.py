"""Checking that stored pixel data decodes, off the network path.

Compressed transfer syntaxes (JPEG baseline/lossless, JPEG-LS, JPEG 2000, RLE, deflate) are decoded with
pydicom's pixel backends (pylibjpeg plugins), through :func:`radgate.imaging.decode.decode_pixels` (bounded
in memory, guarded against decoder panics). An instance whose pixel data does not decode stays stored (no
data is ever lost) but is marked ``undecodable`` with a quarantine entry carrying one reason, and is not sent
to models. Whatever happens while checking one instance, that instance is marked and the next one checked:
no instance is retried forever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from pydicom.dataset import Dataset
from sqlalchemy import select

from radgate.background import PeriodicService
from radgate.clock import utcnow
from radgate.db import Database, Instance, Rejection
from radgate.imaging.decode import (
    FATAL_EXCEPTIONS,
    DecodeError,
    decode_pixels,
    describe_exception,
    read_dataset,
)
from radgate.ingest.parse import Status
from radgate.ingest.store import InstanceStore
from radgate.storage import BlobStoreError

__all__ = ["DecodedHook", "PixelChecker"]

log = logging.getLogger(__name__)

#: Receives each instance whose pixel data decoded, with the decoded dataset (``ds.pixel_array`` cached).
DecodedHook = Callable[[Instance, Dataset], None]


class PixelChecker(PeriodicService):
    thread_name = "radgate-pixel-check"

    def __init__(
        self,
        store: InstanceStore,
        db: Database,
        batch: int = 32,
        interval_s: float = 0.5,
        busy_interval_s: float = 0.25,
        on_decoded: Sequence[DecodedHook] = (),
    ) -> None:
        self.store = store
        self.on_decoded = list(on_decoded)
        self.db = db
        self.batch = batch
        self.interval_s = interval_s
        # While instances are arriving, decode one at a time with pauses between them, so that the check
        # never competes with acknowledging instances; at full speed once ingest is idle.
        self.busy_interval_s = busy_interval_s
        self._busy = False
        self._found = 0
        self.max_decoded_bytes = store.settings.ingest.max_decoded_bytes
        super().__init__()

    def check(self, instance: Instance) -> str | None:
        """Decode the instance's pixel data; return None when fine, else the reason it does not decode.

        Never raises (but for KeyboardInterrupt/SystemExit, and :class:`BlobStoreError` while the object store
        cannot be reached: then the instance is checked later). A decoded image is handed to each
        ``on_decoded`` hook (e.g. the engine's tensor prewarmer); a hook that fails is logged in one line
        and never marks the instance undecodable.
        """
        try:
            ds = read_dataset(self.store.path_of(instance))
        except DecodeError as exc:
            return exc.reason
        if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
            return None  # SR, presentation states ...: nothing to decode
        try:
            decode_pixels(ds, max_bytes=self.max_decoded_bytes)
        except DecodeError as exc:
            return exc.reason
        for hook in self.on_decoded:
            try:
                hook(instance, ds)
            except BaseException as exc:
                if isinstance(exc, FATAL_EXCEPTIONS):
                    raise
                log.warning(
                    "A decoded-image hook failed for SOPInstanceUID %s: %s",
                    instance.SOPInstanceUID,
                    describe_exception(exc),
                )
        return None

    def run_once(self, limit: int | None = None) -> int:
        with self.db.session() as s:
            pending = s.scalars(
                select(Instance).where(Instance.pixel_status == "unchecked").limit(limit or self.batch)
            ).all()
        for instance in pending:
            try:
                reason = self.check(instance)
            except BlobStoreError as exc:  # the object store is away: not the image's fault; check it later
                log.warning("Pixel check paused: %s", exc.reason)
                return 0
            except BaseException as exc:  # check() guards everything; this is the last line of defence
                if isinstance(exc, FATAL_EXCEPTIONS):
                    raise
                reason = f"The decode check failed: {describe_exception(exc)}"
            with self.db.session() as s:
                row = s.get(Instance, instance.id)
                if row is None:
                    continue
                row.pixel_status = "ok" if reason is None else "undecodable"
                if reason is not None:
                    log.warning("SOPInstanceUID %s quarantined: %s", instance.SOPInstanceUID, reason)
                    s.add(
                        Rejection(
                            at=utcnow(),
                            source="decode",
                            calling_ae=instance.calling_ae,
                            SOPInstanceUID=instance.SOPInstanceUID,
                            status=Status.CANNOT_UNDERSTAND,
                            reason=reason,
                            quarantine_path=f"instances/{instance.path}",
                        )
                    )
        return len(pending)

    def tick(self) -> None:
        self._busy = time.monotonic() - self.store.last_activity < 1.0
        self._found = self.run_once(limit=1 if self._busy else None)

    def wait(self) -> None:
        if self._busy:
            self._stop.wait(self.busy_interval_s)
        elif self._found == 0:
            self._stop.wait(self.interval_s)
