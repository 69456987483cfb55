"""The instance store: durable, idempotent storage of received instances, and their index rows.

An instance is acknowledged only once it would survive a power loss: its bytes are under
``DATA_DIR/instances/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>[.rN].dcm`` and its row, with the
series and study rows it updates, is committed. At default durability (``ingest.fsync``) that costs one
disk flush per instance, or per group commit: the bytes are appended to the ingest journal
(:mod:`radgate.ingest.journal`) and it alone is fsync'd before the row commits (on SQLite without waiting
for the disk; PostgreSQL commits stay synchronous); the file and the row reach the disk at the journal's
next checkpoint, and a crash before it is repaired from the journal when the store
opens again. Without the journal (another process holds it, or an instance over 64 MiB) the file and its
directory are fsync'd and the commit is synchronous, as before. Either way a crash never leaves a row without
its file once recovery has run; an unreferenced file it leaves is replaced by the next store of that
instance. A first copy is written straight to its path; any other goes through ``.incoming`` and a rename.
Instances arriving together share one commit (group commit): one journal append and fdatasync, one SELECT
for their copies already stored, one UPDATE per study and series, their rows in one ``executemany``; the
journal's flush runs on another thread while the batch's SQL runs, and the commit waits for both.

With ``store.backend = "s3"`` (:mod:`radgate.storage.s3`) the bytes go to the object store instead, under a
key named by their digest (``<Study>/<Series>/<SOP>.<sha256[:16]>.dcm``, never overwritten), outside the
commit lock; once PutObject has returned they are durable, the row commits (synchronously) and the instance is
acknowledged. The ingest journal is not used there: it makes bytes durable on this machine's disk only,
which the workers on other machines cannot read, and replaying it needs this machine back; the object store
already is the durable copy, and a row is never committed before its object exists.

Duplicates: the same SOPInstanceUID with the same dataset bytes (file meta excluded, since it differs by
sender) is a success that stores nothing. The same UID with different bytes becomes revision N+1; earlier
revisions are kept and never overwritten.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import bindparam, insert, make_url, select, update
from sqlalchemy.orm import Session

from radgate.clock import utcnow
from radgate.config import Settings
from radgate.db import Database, Instance, Rejection, Series, Study
from radgate.ingest.journal import (
    MAX_RECORD_BYTES,
    IngestJournal,
    JournalBusyError,
    JournalMark,
    JournalRecord,
    Segment,
    sync_files,
    write_all,
)
from radgate.ingest.parse import (
    STORAGE_SOP_CLASSES,
    IngestRejection,
    ParsedInstance,
    Status,
    get_value,
    header_text,
    parse_part10,
)
from radgate.logs import REPORTED
from radgate.storage import BlobStoreError, FilesystemBlobs, blobs_for
from radgate.storage.filesystem import fsync_dir, make_dirs_durably

__all__ = ["IndexHeader", "InstanceStore", "RemoteInstance", "StoreOutcome", "index_header", "utcnow"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreOutcome:
    """What happened to one received instance."""

    outcome: str  # stored | duplicate | revision | rejected
    status: int  # PS3.4 status to return
    SOPInstanceUID: str | None = None
    StudyInstanceUID: str | None = None
    SeriesInstanceUID: str | None = None
    SOPClassUID: str | None = None
    reason: str | None = None
    revision: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome != "rejected"


# Statements built once: SQLAlchemy then reuses their compiled form, which matters at hundreds per second.
_COPIES = select(Instance.revision, Instance.sha256, Instance.path).where(
    Instance.SOPInstanceUID == bindparam("uid")
)
#: The journal is checkpointed once ingest has been idle this long (and whenever a segment fills up).
IDLE_CHECKPOINT_S = 1.0
_UPDATE_STUDY = (
    update(Study)
    .where(Study.StudyInstanceUID == bindparam("uid"), Study.status != "complete")
    .values(num_instances=Study.num_instances + bindparam("added"), last_received=bindparam("now"))
)
_UPDATE_SERIES = (
    update(Series)
    .where(Series.SeriesInstanceUID == bindparam("uid"), Series.status == "receiving")
    .values(num_instances=Series.num_instances + bindparam("added"), last_received=bindparam("now"))
)
_INSERT_INSTANCE = insert(Instance)
_COPIES_OF = select(Instance.SOPInstanceUID, Instance.revision, Instance.sha256).where(
    Instance.SOPInstanceUID.in_(bindparam("uids", expanding=True))
)

StoredHook = Callable[[ParsedInstance, StoreOutcome], None]

#: The ``studies`` columns a new study takes from its first instance's header, with their widths.
_STUDY_HEADER = (
    ("AccessionNumber", 16),
    ("StudyDate", 8),
    ("StudyTime", 16),
    ("StudyID", 16),
    ("StudyDescription", 64),
    ("PatientName", 324),
    ("PatientID", 64),
    ("PatientBirthDate", 8),
    ("PatientSex", 16),
    ("ReferringPhysicianName", 324),
)


@dataclass(frozen=True)
class IndexHeader:
    """What the index reads of an instance's header beside its UIDs and features, read out in the process
    that parsed it (an SCP process, :mod:`radgate.ingest.scpprocs`) so the one that indexes it needs no
    dataset."""

    size: int  # of the Part-10 bytes
    InstanceNumber: int | None
    study: dict[str, str | None]  # a new study's columns (_STUDY_HEADER)
    SeriesNumber: int | None
    SeriesDescription: str | None
    NumberOfSeriesRelatedInstances: int | None


def index_header(parsed: ParsedInstance) -> IndexHeader:
    ds = parsed.dataset
    return IndexHeader(
        size=len(parsed.data),
        InstanceNumber=_int_or_none(get_value(ds, "InstanceNumber")),
        study={keyword: header_text(ds, keyword, width) for keyword, width in _STUDY_HEADER},
        SeriesNumber=_int_or_none(get_value(ds, "SeriesNumber")),
        SeriesDescription=header_text(ds, "SeriesDescription", 64),
        NumberOfSeriesRelatedInstances=_int_or_none(get_value(ds, "NumberOfSeriesRelatedInstances")),
    )


@dataclass(frozen=True)
class RemoteInstance:
    """One instance an SCP process has written (and journaled) and hands to the gateway's group commit:
    everything the index needs, none of the bytes (they are in ``current``, or under ``key``)."""

    SOPInstanceUID: str
    SOPClassUID: str
    StudyInstanceUID: str
    SeriesInstanceUID: str
    TransferSyntaxUID: str
    features: dict[str, object]
    sha256: str
    header: IndexHeader
    source: str
    calling_ae: str | None
    current: str | None  # its temporary file (None: in the object store under ``key``)
    key: str | None
    journal: bool  # made durable by the sending process's own journal

    @classmethod
    def of(cls, it: _Pending) -> RemoteInstance:
        parsed = it.parsed
        return cls(
            parsed.SOPInstanceUID,
            parsed.SOPClassUID,
            parsed.StudyInstanceUID,
            parsed.SeriesInstanceUID,
            parsed.TransferSyntaxUID,
            parsed.features,
            parsed.sha256,
            index_header(parsed),
            it.source,
            it.calling_ae,
            None if it.current is None else str(it.current),
            it.key,
            it.journal,
        )

    def pending(self) -> _Pending:
        from pydicom.dataset import Dataset

        parsed = ParsedInstance(
            b"",  # the bytes stay with the process that received them (``current``)
            0,
            Dataset(),
            self.SOPInstanceUID,
            self.SOPClassUID,
            self.StudyInstanceUID,
            self.SeriesInstanceUID,
            self.TransferSyntaxUID,
            dict(self.features),
        )
        parsed.__dict__["sha256"] = self.sha256  # the cached digest, computed where the bytes are
        current = None if self.current is None else Path(self.current)
        return _Pending(
            parsed,
            self.source,
            self.calling_ae,
            current,
            journal=self.journal,
            key=self.key,
            header=self.header,
            remote=True,
        )


@dataclass(eq=False)
class _Pending:
    """One instance written to its temporary file, waiting for the commit that indexes it."""

    parsed: ParsedInstance
    source: str
    calling_ae: str | None
    current: Path | None  # where its bytes are now: the temporary file, then the final path (None: object)
    final: Path | None = None
    placed: Path | None = None  # written straight to its revision-1 path, file and directory fsync'd
    journal: bool = False  # made durable by the ingest journal (its file is not fsync'd on the way)
    key: str | None = None  # put in the object store under this key already (store.backend = "s3")
    digest: str | None = None
    outcome: StoreOutcome | None = None
    error: BaseException | None = None
    leads: bool = False  # woken to lead the next batch
    header: IndexHeader | None = None  # read out by the process that parsed it (remote); else from parsed
    remote: bool = False  # sent by an SCP process: journaled (if ``journal``) there, not in this store's
    durable: Callable[[], None] | None = None  # remote: waits until its sender's journal holds it (or raises)
    written: Future[None] | None = None  # its file's bytes being written (journaled), done before the commit
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class _BatchRows:
    """What one batch writes: its instance rows, and per study and series the first instance seen (for a
    study or series that is new) and how many instances it adds."""

    instances: list[dict[str, object]] = field(default_factory=list)
    studies: dict[str, tuple[_Pending, int]] = field(default_factory=dict)
    series: dict[str, tuple[_Pending, int]] = field(default_factory=dict)
    now: datetime = field(default_factory=utcnow)  # when the last of them was indexed

    def add(self, row: dict[str, object]) -> None:
        self.instances.append(row)

    def touch(self, it: _Pending, added: int) -> None:
        parsed = it.parsed
        for counts, uid in ((self.studies, parsed.StudyInstanceUID), (self.series, parsed.SeriesInstanceUID)):
            first, before = counts.get(uid, (it, 0))
            counts[uid] = (first, before + added)


class InstanceStore:
    """Stores instances durably and indexes them; safe to call from many threads.

    ``places``: a first copy may be written straight to its final path (only a process that indexes its own
    instances may: the path of a copy is decided under the index lock). ``tmp_prefix`` starts the names of
    its files in ``.incoming``, so that the files of an SCP process that died can be found.

    The database write and the final rename are serialised by one lock: SQLite allows one writer anyway, and
    it makes duplicate/revision detection race-free. Parsing, hashing and the fsync of the data happen
    outside the lock, so concurrent associations overlap their slow parts.
    """

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.root = settings.store_dir
        self.blobs = blobs_for(settings)
        self._objects = not isinstance(self.blobs, FilesystemBlobs)  # an object store: no files of ours
        self.tmp = self.root / ".incoming"
        self.tmp.mkdir(parents=True, exist_ok=True)
        settings.quarantine_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()  # shared with the assembler
        self.places = True
        self.tmp_prefix = ""
        self._fsync = settings.ingest.fsync
        self._rejected_classes = set(settings.ingest.reject_sop_classes)
        self._known_dirs: set[Path] = set()
        self._uid_locks = [threading.Lock() for _ in range(64)]
        self._sync_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="radgate-fsync")
        self._queue: list[_Pending] = []  # instances waiting for a group commit
        self._queue_lock = threading.Lock()
        self._leading = False  # a thread is running (or about to run) a batch
        self.last_activity = 0.0  # time.monotonic() of the last stored instance, for idle-time work
        self._journal: IngestJournal | None = None
        self._sqlite_file: Path | None = None
        self._fast_db: Database | None = None  # SQLite with synchronous=NORMAL, for journaled rows
        self._closed_segments: list[Segment] = []  # closed journal segments waiting for their checkpoint
        self._checkpointer: threading.Thread | None = None
        self._wake = threading.Event()
        self._closing = False
        if self._fsync and not self._objects:  # an object store is durable itself (see the module docstring)
            self._open_journal()
        elif self._objects and any((settings.data_dir / "journal").glob("*.jnl")):
            log.warning(
                "The ingest journal in %s holds instances from the filesystem backend; start once with "
                'store.backend = "filesystem" to replay it',
                settings.data_dir / "journal",
            )

    # ----------------------------------------------------------------- journal
    def _open_journal(self) -> None:
        url = make_url(self.db.url)
        if self.db.backend == "sqlite":
            if not url.database or url.database == ":memory:":
                return  # a second connection would be another database
            self._sqlite_file = Path(url.database)
        try:
            journal = IngestJournal(self.settings.data_dir / "journal")
        except JournalBusyError:
            log.info("Another process holds the ingest journal of %s: fsync each instance", self.root.parent)
            return
        except OSError as exc:
            log.warning("No ingest journal (%s): fsync each instance", exc.strerror or type(exc).__name__)
            return
        self._recover(journal)
        for directory in sorted(self.settings.data_dir.glob("journal/w*")):  # SCP processes' journals
            if directory.is_dir():
                self.recover_journal(directory)
        if self.db.backend == "sqlite":
            self._fast_db = Database(self.db.url, sqlite_synchronous="NORMAL")
        self._journal = journal
        atexit.register(_close_at_exit, weakref.ref(self))

    def recover_journal(self, directory: Path) -> bool:
        """Replay and drop the journal of an SCP process (``journal/w<n>``: one that ended, or a crash left);
        False when a running process holds it."""
        try:
            journal = IngestJournal(directory)
        except (JournalBusyError, OSError):
            return False
        try:
            self._recover(journal)
        finally:
            journal.close()
        return True

    def _recover(self, journal: IngestJournal) -> None:
        """Replay what a crash left in the journal, through the synchronous path; then drop it.

        A copy found intact may still be only in the page cache (its process died, the machine did not):
        it is fsync'd, with its directory, before the record that vouches for it is dropped.
        """
        segments = journal.segments()
        if not segments:
            return
        replayed = repaired = 0
        intact: list[Path] = []
        for path in segments:
            for record in journal.read(path):
                replayed += 1
                repaired += self._replay(record, intact)
        sync_files(intact)
        self._sync_db()
        for path in segments:
            journal.drop(path)
        log.warning(
            "Ingest journal: %d instance(s) checked after an unclean stop, %d stored or rewritten",
            replayed,
            repaired,
        )

    def _replay(self, record: JournalRecord, intact: list[Path]) -> int:
        """One journal record: its row and file are checked, and whichever is missing is made again."""
        payload = record.payload
        try:
            parsed = parse_part10(
                payload, self.settings.ingest.max_instance_bytes, self.settings.ingest.max_inflated_bytes
            )
        except IngestRejection as rej:  # it was accepted once; keep the bytes rather than lose them
            self.reject(payload, rej, source=str(record.header.get("source", "journal")))
            return 1
        digest = record.header["sha256"]
        with self.db.session() as s:
            rows = s.connection().execute(_COPIES, {"uid": parsed.SOPInstanceUID}).all()
        copies = [r for r in rows if r.sha256 == digest]
        if not copies:
            calling_ae = record.header.get("calling_ae")
            self._store(parsed, source=str(record.header.get("source", "journal")), calling_ae=calling_ae)
            return 1
        newest = max(copies, key=lambda r: r.revision)
        if self._intact(self.root / newest.path, digest):  # stored; or a duplicate of a stored copy
            intact.append(self.root / newest.path)
            return 0
        self.blobs.put(newest.path, payload)
        return 1

    def _intact(self, path: Path, digest: str) -> bool:
        """Whether the file holds a dataset with this digest (its file meta may be another sender's)."""
        try:
            data = path.read_bytes()
            limits = self.settings.ingest
            return parse_part10(data, limits.max_instance_bytes, limits.max_inflated_bytes).sha256 == digest
        except (OSError, IngestRejection):
            return False

    @contextmanager
    def _session(self, journaled: bool) -> Iterator[Session]:
        """The batch's transaction: synchronous, or (journaled) committed without waiting for the disk."""
        if not journaled:
            with self.db.session() as s:
                yield s
            return
        # PostgreSQL commits stay synchronous: its server can crash and lose asynchronous commits while
        # radgate keeps running, and the journal is replayed only when radgate starts.
        with (self._fast_db or self.db).session() as s:
            yield s

    def _sync_db(self) -> None:
        """Make every commit so far durable (journaled ones included; PostgreSQL's are already)."""
        if self._sqlite_file is not None:
            # WAL mode: commits are frames in the -wal file (and checkpointed pages in the main file).
            for path in (self._sqlite_file, self._sqlite_file.with_name(self._sqlite_file.name + "-wal")):
                try:
                    fd = os.open(path, os.O_RDONLY)
                except FileNotFoundError:
                    continue
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

    def checkpoint(self) -> int:
        """Make every journaled instance durable in place and drop the journal; returns segments dropped."""
        journal = self._journal
        if journal is None:
            return 0
        with self.lock:
            self._closed_segments.extend(journal.rotate())
            segments = list(self._closed_segments)
        if not segments:
            return 0
        self._sync_db()
        for segment in segments:
            journal.checkpoint(segment)
            with self.lock:
                self._closed_segments.remove(segment)
        return len(segments)

    def _checkpoint_loop(self) -> None:
        while True:
            self._wake.wait(0.25)
            self._wake.clear()
            if self._closing:
                return
            journal = self._journal
            if journal is None:
                return
            try:
                if self._closed_segments or time.monotonic() - self.last_activity >= IDLE_CHECKPOINT_S:
                    self.checkpoint()
            except Exception as exc:
                if not journal.dir.is_dir():  # the data directory was removed: nothing left to keep
                    with self.lock:
                        self._closed_segments.clear()
                        journal.rotate()
                        self._checkpointer = None
                    return
                log.warning("Ingest journal checkpoint failed (%s); it is retried", _storage_failure(exc))
                time.sleep(1.0)
            with self.lock:  # nothing left: stop (the next journaled batch starts a new thread)
                if not journal.has_records and not self._closed_segments:
                    self._checkpointer = None
                    return

    def close(self) -> None:
        """Checkpoint the journal and release it (the gateway calls this when it stops)."""
        journal = self._journal
        if journal is None:
            return
        self._closing = True
        self._wake.set()
        thread = self._checkpointer
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=60)
        try:
            self.checkpoint()
        except Exception as exc:
            if journal.dir.is_dir():
                log.warning("Ingest journal checkpoint failed (%s); the next start replays it", exc)
        with self.lock:
            self._journal = None
            journal.close()
        if self._fast_db is not None:
            self._fast_db.dispose()

    # ------------------------------------------------------------------ public
    def store_bytes(
        self,
        data: bytes,
        *,
        source: str,
        calling_ae: str | None = None,
        origin: str | None = None,
        expected_sop_instance_uid: str | None = None,
        required_study_uid: str | None = None,
    ) -> StoreOutcome:
        """Validate, store and index one instance; never raises for bad input.

        ``expected_sop_instance_uid`` is the C-STORE request's Affected SOP Instance UID;
        ``required_study_uid`` the study named in a STOW-RS URL.
        """
        try:
            parsed = parse_part10(
                data, self.settings.ingest.max_instance_bytes, self.settings.ingest.max_inflated_bytes
            )
            self._check_acceptable(parsed, expected_sop_instance_uid, required_study_uid)
        except IngestRejection as rej:
            return self.reject(data, rej, source=source, calling_ae=calling_ae, origin=origin)
        try:
            return self._store(parsed, source=source, calling_ae=calling_ae)
        except Exception as exc:  # disk full, database down: a failure status, never a crash
            failure = IngestRejection(Status.OUT_OF_RESOURCES, _storage_failure(exc), parsed.SOPInstanceUID)
            if _is_disk_full(exc):
                log.error("Storing SOPInstanceUID %s failed: %s", parsed.SOPInstanceUID, failure.reason)
            elif isinstance(exc, BlobStoreError):
                log.error("Storing SOPInstanceUID %s failed: %s", parsed.SOPInstanceUID, exc.reason)
            else:
                log.exception("Storing SOPInstanceUID %s failed", parsed.SOPInstanceUID)
            return self.reject(None, failure, source=source, calling_ae=calling_ae, origin=origin)

    def reject(
        self,
        data: bytes | None,
        rej: IngestRejection,
        *,
        source: str,
        calling_ae: str | None = None,
        origin: str | None = None,
    ) -> StoreOutcome:
        """Record a refusal; keep the bytes in quarantine (unless over the size limit) so nothing is lost."""
        quarantine_path: str | None = None
        if data and rej.status != Status.OUT_OF_RESOURCES:
            name = f"{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}.bin"
            path = self.settings.quarantine_dir / name
            try:
                self._write_durably(path, data)
                quarantine_path = name
            except OSError as exc:
                path.unlink(missing_ok=True)  # never leave half a quarantine file (disk full)
                log.error("Could not write a quarantine file: %s", exc.strerror or type(exc).__name__)
        # File paths stay out of the log (folder names often carry patient names); the rejection row keeps
        # the origin for the operator.
        log.warning(
            "Rejected instance from %s (source %s, SOPInstanceUID %s): status 0x%04X, %s",
            calling_ae or ("a file" if source == "import" else origin) or "unknown",
            source,
            rej.SOPInstanceUID or "unknown",
            rej.status,
            rej.reason,
            extra=REPORTED,  # `radgate import` prints each rejection; the server's are logged
        )
        try:
            with self.db.session() as s:
                s.add(
                    Rejection(
                        at=utcnow(),
                        source=source,
                        calling_ae=calling_ae,
                        origin=origin,
                        SOPInstanceUID=rej.SOPInstanceUID,
                        status=rej.status,
                        reason=rej.reason,
                        quarantine_path=quarantine_path,
                    )
                )
        except Exception:
            log.exception("Could not record a rejection")
        return StoreOutcome("rejected", rej.status, SOPInstanceUID=rej.SOPInstanceUID, reason=rej.reason)

    def record_refusal(self, source: str, calling_ae: str | None, origin: str | None, reason: str) -> None:
        """Record a refusal that carried no instance (an association from a caller not on the allowlist)."""
        try:
            with self.db.session() as s:
                s.add(
                    Rejection(at=utcnow(), source=source, calling_ae=calling_ae, origin=origin, reason=reason)
                )
        except Exception:
            log.exception("Could not record a refusal")

    def index_remote(
        self, instances: list[RemoteInstance], durable: Callable[[], None] | None = None
    ) -> list[tuple[StoreOutcome | BaseException, str | None]]:
        """Index instances an SCP process has made durable (journaled, or their files fsync'd) in one group
        commit: per instance its outcome (or the error that failed it) and its final path.

        The sender's temporary files are renamed into place here, under the same per-UID locks as this
        process's own instances, so that two copies of one SOPInstanceUID from different processes are
        decided one after the other, as within one process. ``durable`` returns once the sender's journal
        holds the journaled ones (it appends them while this runs the SQL), or raises: nothing commits before.
        """
        batch = [r.pending() for r in instances]
        for it in batch:
            it.durable = durable if it.journal else None
        locks = sorted({hash(it.parsed.SOPInstanceUID) % len(self._uid_locks) for it in batch})
        with contextlib.ExitStack() as held:
            for index in locks:
                held.enter_context(self._uid_locks[index])
            self._commit_batch(batch)
        results: list[tuple[StoreOutcome | BaseException, str | None]] = []
        for it in batch:
            if it.outcome is not None:
                _log_revision(it.parsed, it.outcome)
            final = None if it.final is None else str(it.final)
            results.append((it.outcome if it.outcome is not None else it.error or RuntimeError(), final))
        return results

    def path_of(self, instance: Instance) -> Path:
        """A local file with the instance's bytes (a cached copy of the object with an object store)."""
        return self.blobs.local_path(instance.path)

    # ----------------------------------------------------------------- helpers
    def _check_acceptable(
        self, parsed: ParsedInstance, expected_uid: str | None, study_uid: str | None = None
    ) -> None:
        if study_uid is not None and parsed.StudyInstanceUID != study_uid:
            raise IngestRejection(
                Status.DATASET_DOES_NOT_MATCH_SOP_CLASS,
                f"The instance belongs to study {parsed.StudyInstanceUID}, "
                f"not to {study_uid} named in the URL.",
                parsed.SOPInstanceUID,
            )
        if parsed.SOPClassUID not in STORAGE_SOP_CLASSES or parsed.SOPClassUID in self._rejected_classes:
            raise IngestRejection(
                Status.REFUSED_SOP_CLASS_NOT_SUPPORTED,
                f"SOP Class {parsed.SOPClassUID} is not a storage SOP class radgate accepts.",
                parsed.SOPInstanceUID,
            )
        if expected_uid is not None and expected_uid.strip("\x00 ") != parsed.SOPInstanceUID:
            raise IngestRejection(
                Status.DATASET_DOES_NOT_MATCH_SOP_CLASS,
                f"The dataset's SOPInstanceUID {parsed.SOPInstanceUID} differs from the C-STORE request's "
                f"Affected SOP Instance UID {expected_uid.strip()}.",
                parsed.SOPInstanceUID,
            )

    def _write_durably(self, path: Path, data: bytes, sync: bool = True) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            write_all(fd, data)
            if self._fsync and sync:
                os.fdatasync(fd)
        finally:
            os.close(fd)

    def _fsync_dir(self, path: Path) -> None:
        fsync_dir(path, self._fsync)

    def _ensure_dir(self, path: Path) -> None:
        if path in self._known_dirs:
            return
        make_dirs_durably(path, self._fsync)
        self._known_dirs.add(path)

    def _store(self, parsed: ParsedInstance, *, source: str, calling_ae: str | None) -> StoreOutcome:
        # One instance's file is written by one thread at a time (two copies of the same SOPInstanceUID
        # arriving at once wait for each other); different instances proceed in parallel.
        if self._objects:
            return self._store_object(parsed, source=source, calling_ae=calling_ae)
        journaled = self._journal is not None and len(parsed.data) <= MAX_RECORD_BYTES
        with self._uid_locks[hash(parsed.SOPInstanceUID) % len(self._uid_locks)]:
            item = self._write_placed(parsed, source, calling_ae, sync=not journaled) if self.places else None
            if item is not None:
                item.journal = journaled
                try:
                    outcome = self._commit(item)
                finally:
                    if item.written is not None:  # a failed batch may not have waited: the file is settled
                        with contextlib.suppress(Exception):
                            item.written.result()
            else:
                tmp_path = self.tmp / f"{self.tmp_prefix}{uuid.uuid4().hex}.part"
                try:
                    self._write_durably(tmp_path, parsed.data, sync=not journaled)
                    outcome = self._commit(_Pending(parsed, source, calling_ae, tmp_path, journal=journaled))
                finally:
                    tmp_path.unlink(missing_ok=True)
        _log_revision(parsed, outcome)
        return outcome

    def _store_object(self, parsed: ParsedInstance, *, source: str, calling_ae: str | None) -> StoreOutcome:
        """The object store: PutObject (outside the commit lock; skipped when the object is there already),
        then the row in the group commit. A put that fails raises before any row is written; a commit that
        fails leaves an unreferenced object, which the next store of the same bytes finds and indexes."""
        key = object_key(parsed)
        with self._uid_locks[hash(parsed.SOPInstanceUID) % len(self._uid_locks)]:
            if not self.blobs.exists(key):
                self.blobs.put(key, parsed.data)
            outcome = self._commit(_Pending(parsed, source, calling_ae, None, key=key))
        _log_revision(parsed, outcome)
        return outcome

    def _write_placed(
        self, parsed: ParsedInstance, source: str, calling_ae: str | None, sync: bool = True
    ) -> _Pending | None:
        """Write a first copy straight to ``<SOPInstanceUID>.dcm``; None when that file exists already.

        A new file needs its data and its directory entry on disk: the two fsyncs run at the same time
        (the file system commits both in one journal transaction) instead of one after the other, and there
        is no rename left to make durable. Whether it really is revision 1 is still decided under the lock;
        a file left by a crash before its commit is found by the next copy, which takes the path through
        ``.incoming`` and replaces it, as before.

        ``sync=False`` (journaled): no fsync at all, and the bytes are written on another thread
        (``written``) while the journal's append and the batch's SQL run; the commit waits for them. The
        file is created here, so the path is taken before the instance joins a batch.
        """
        series_dir = self.root / parsed.StudyInstanceUID / parsed.SeriesInstanceUID
        self._ensure_dir(series_dir)
        final = series_dir / f"{parsed.SOPInstanceUID}.dcm"
        try:
            fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except FileExistsError:
            return None
        if not (self._fsync and sync):
            try:
                written = self._sync_pool.submit(_fill, fd, final, parsed.data)
            except BaseException:
                os.close(fd)
                final.unlink(missing_ok=True)
                raise
            return _Pending(parsed, source, calling_ae, final, placed=final, written=written)
        try:
            try:
                write_all(fd, parsed.data)
                directory = self._sync_pool.submit(self._fsync_dir, series_dir)
                os.fdatasync(fd)
                directory.result()
            finally:
                os.close(fd)
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        return _Pending(parsed, source, calling_ae, final, placed=final)

    # ------------------------------------------------------------ group commit
    # Each instance's file is written and fsync'd by its own thread (outside any lock); what remains -- the
    # rename into place, the directory fsync and the database commit -- is serialised, and is mostly waiting
    # for the disk. So instances that arrive together (parallel associations, STOW-RS requests) share it:
    # the first waiting thread leads and handles everything queued in one transaction (one commit, one
    # fsync per directory), then hands the lead to the next waiting thread. Each instance is acknowledged
    # only after the commit that holds its row, exactly as before; one instance alone is a batch of one.

    def _commit(self, item: _Pending) -> StoreOutcome:
        with self._queue_lock:
            self._queue.append(item)
            lead = not self._leading
            self._leading = True
        if not lead:
            item.done.wait()
        try:
            while item.outcome is None and item.error is None:  # asked to lead (or leading): run a batch
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit_batch(batch)
        finally:
            with self._queue_lock:  # hand the lead over to the first one waiting, if any
                if item.leads or lead:
                    if self._queue:
                        self._queue[0].leads = True
                        self._queue[0].done.set()
                    else:
                        self._leading = False
        if item.error is not None:
            raise item.error
        assert item.outcome is not None
        return item.outcome

    def _commit_batch(self, batch: list[_Pending]) -> None:
        try:
            with self.lock:
                outcomes = self._commit_locked(batch)
        except Exception as exc:
            if len(batch) > 1:  # one bad instance must not fail the others: retry them one by one
                for it in batch:
                    self._commit_batch([it])
                return
            batch[0].error = exc
            batch[0].done.set()
            return
        for it, outcome in zip(batch, outcomes, strict=True):
            it.outcome = outcome
            it.done.set()

    def _commit_locked(self, batch: list[_Pending]) -> list[StoreOutcome]:
        """Index the batch in one transaction. Journaled instances: their bytes are appended to the journal
        and fsync'd (one flush for the batch) before the commit, which then does not wait for the disk;
        the others had their files fsync'd, and their directories are fsync'd here and the commit is
        synchronous. Either way the caller may acknowledge when this returns.

        The journal's append runs on another thread while this one does the batch's SQL: the write and the
        fdatasync (which release the GIL) overlap the Python of the transaction instead of following it.
        The transaction commits only once the flush has returned; if either fails, the append is taken
        back and nothing of the batch is acknowledged. A duplicate is journaled too (decided in the
        transaction, after the append started); replaying it finds its copy stored and changes nothing.
        """
        journal = self._journal
        journaled = journal is not None and any(it.journal for it in batch)
        ours = [it for it in batch if it.journal and not it.remote]  # remote: journaled by their sender
        flush: Future[JournalMark] | None = None
        if journal is not None and ours:
            records = [(self._record(it), it.parsed.data) for it in ours]
            flush = self._sync_pool.submit(journal.append, records)
        mark = None
        try:
            with self._session(journaled) as s:
                outcomes = self._place_batch(s, batch)
                moved = [
                    it.final.parent
                    for it in batch
                    if it.final is not None and it.final != it.placed and not it.journal
                ]
                for directory in dict.fromkeys(moved):  # placed files had their directory fsync'd already
                    self._fsync_dir(directory)
                for it in batch:
                    if it.written is not None:
                        it.written.result()  # its bytes, written beside this SQL (raises if they failed)
                if flush is not None and journal is not None:
                    mark, flush = flush.result(), None
                    journal.track([it.final for it in ours if it.final is not None])
                for wait in dict.fromkeys(it.durable for it in batch if it.durable is not None):
                    wait()  # an SCP process's journal append, which ran beside this SQL
                self.last_activity = time.monotonic()
                # The session commits when the ``with`` block closes: then it is safe to acknowledge.
        except BaseException:
            if flush is not None:  # the SQL failed while the append ran: wait for it, to take it back
                try:
                    mark = flush.result()
                except BaseException:
                    mark = None  # the append failed too, and cut itself back
            if mark is not None and journal is not None:
                journal.undo(mark)  # not indexed, not acknowledged: not for recovery either
            raise
        if journaled and any(it.final is not None and not it.journal for it in batch):
            self._sync_db()  # an unjournaled instance in a journaled batch: its row must be on disk now
        if journal is not None and mark is not None:
            self._journal_appended(journal)
        return outcomes

    def _journal_appended(self, journal: IngestJournal) -> None:
        """After a batch went into the journal: close a full segment, and keep the checkpointer running."""
        if journal.full:
            self._closed_segments.extend(journal.rotate())
            self._wake.set()
        if self._checkpointer is None and not self._closing:
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="radgate-journal", daemon=True
            )
            self._checkpointer.start()

    def _record(self, it: _Pending) -> dict[str, object]:
        return {
            "sha256": it.parsed.sha256,
            "body": it.parsed.body_offset,
            "source": it.source,
            "calling_ae": it.calling_ae,
        }

    def _place_batch(self, s: Session, batch: list[_Pending]) -> list[StoreOutcome]:
        """In the batch's transaction: detect duplicates and revisions, move files into place, index them.

        One SELECT finds the copies already stored of every instance in the batch; then each instance is
        decided in order against those and the ones decided before it (two copies in one batch: the second
        is a duplicate or a revision of the first); then the rows are written together: one UPDATE per
        study and per series of the batch (what it adds), and the instance rows in one ``executemany``.
        """
        uids = sorted({it.parsed.SOPInstanceUID for it in batch})
        known: dict[str, list[tuple[int, str]]] = {uid: [] for uid in uids}
        for row in s.connection().execute(_COPIES_OF, {"uids": uids}):
            known[row.SOPInstanceUID].append((row.revision, row.sha256))
        pending = _BatchRows()
        outcomes = [self._place(it, known[it.parsed.SOPInstanceUID], pending) for it in batch]
        if pending.instances:
            self._index(s, pending)
        return outcomes

    def _place(self, it: _Pending, existing: list[tuple[int, str]], pending: _BatchRows) -> StoreOutcome:
        """One instance against the copies stored so far (``existing``: revision, digest; the new row is
        added to it and to ``pending``)."""
        parsed = it.parsed
        digest = it.digest = parsed.sha256
        newest = max((revision for revision, _ in existing), default=0)
        same = [revision for revision, sha in existing if sha == digest]
        if same:
            if it.key is None and it.placed and max(same) != 1:  # written in place, not that revision's
                it.placed.unlink(missing_ok=True)
            elif it.key is None and it.placed:  # revision 1's file had gone missing; these bytes restore it
                it.final = it.placed
            return self._outcome("duplicate", parsed, newest)
        revision = newest + 1
        if it.key is not None:  # already in the object store: index it
            path = it.key
        else:
            assert it.current is not None
            name = parsed.SOPInstanceUID + (f".r{revision}" if revision > 1 else "") + ".dcm"
            series_dir = self.root / parsed.StudyInstanceUID / parsed.SeriesInstanceUID
            self._ensure_dir(series_dir)
            final = series_dir / name
            if it.current != final:
                os.replace(it.current, final)
            it.current = it.final = final
            path = str(final.relative_to(self.root))
        existing.append((revision, digest))
        pending.now = utcnow()
        row = self._instance_row(
            parsed, digest, revision, path, pending.now, it.source, it.calling_ae, it.header
        )
        pending.add(row)
        pending.touch(it, added=1 if revision == 1 else 0)
        return self._outcome("stored" if revision == 1 else "revision", parsed, revision)

    @staticmethod
    def _outcome(kind: str, parsed: ParsedInstance, revision: int) -> StoreOutcome:
        return StoreOutcome(
            kind,
            Status.SUCCESS,
            SOPInstanceUID=parsed.SOPInstanceUID,
            StudyInstanceUID=parsed.StudyInstanceUID,
            SeriesInstanceUID=parsed.SeriesInstanceUID,
            SOPClassUID=parsed.SOPClassUID,
            revision=revision,
        )

    @staticmethod
    def _instance_row(
        parsed: ParsedInstance,
        digest: str,
        revision: int,
        path: str,
        now: datetime,
        source: str,
        calling_ae: str | None,
        header: IndexHeader | None = None,
    ) -> dict[str, object]:
        """The ``instances`` row of one stored copy (``header``: read out already, by an SCP process)."""
        if header is not None:
            size, instance_number = header.size, header.InstanceNumber
        else:
            size, instance_number = (
                len(parsed.data),
                _int_or_none(get_value(parsed.dataset, "InstanceNumber")),
            )
        return dict(
            SOPInstanceUID=parsed.SOPInstanceUID,
            revision=revision,
            SOPClassUID=parsed.SOPClassUID,
            StudyInstanceUID=parsed.StudyInstanceUID,
            SeriesInstanceUID=parsed.SeriesInstanceUID,
            InstanceNumber=instance_number,
            TransferSyntaxUID=parsed.TransferSyntaxUID,
            path=path,
            size=size,
            sha256=digest,
            received_at=now,
            source=source,
            calling_ae=calling_ae,
            pixel_status="unchecked",
            **parsed.features,
        )

    def _index(self, s: Session, pending: _BatchRows) -> None:
        """Update the batch's studies and series and insert its instance rows, in the caller's transaction.

        The common case (series and study already known and still receiving) is one UPDATE each through
        SQLAlchemy Core; creating or re-opening a series or study goes through the ORM.
        """
        conn = s.connection()
        now = pending.now
        for uid, (it, added) in pending.studies.items():
            if conn.execute(_UPDATE_STUDY, {"uid": uid, "added": added, "now": now}).rowcount == 0:
                self._study_slow_path(s, it, added, now)
        for uid, (it, added) in pending.series.items():
            if conn.execute(_UPDATE_SERIES, {"uid": uid, "added": added, "now": now}).rowcount == 0:
                self._series_slow_path(s, it, added, now)
        conn.execute(_INSERT_INSTANCE, pending.instances)

    def _study_slow_path(self, s: Session, it: _Pending, added: int, now: datetime) -> None:
        parsed = it.parsed
        header = it.header or index_header(parsed)
        study = s.get(Study, parsed.StudyInstanceUID)
        if study is None:
            study = Study(
                StudyInstanceUID=parsed.StudyInstanceUID,
                **header.study,
                status="receiving",
                num_instances=0,
                first_received=now,
                last_received=now,
                reopened_count=0,
            )
            s.add(study)
        elif study.status == "complete":
            study.status = "reopened"
            study.reopened_count = (study.reopened_count or 0) + 1
            log.warning("Study %s got a new instance after completion: re-opened", study.StudyInstanceUID)
        study.num_instances = (study.num_instances or 0) + added
        study.last_received = now
        s.flush()

    def _series_slow_path(self, s: Session, it: _Pending, added: int, now: datetime) -> None:
        parsed = it.parsed
        header = it.header or index_header(parsed)
        series = s.get(Series, parsed.SeriesInstanceUID)
        if series is None:
            series = Series(
                SeriesInstanceUID=parsed.SeriesInstanceUID,
                StudyInstanceUID=parsed.StudyInstanceUID,
                Modality=parsed.features["Modality"],
                SeriesNumber=header.SeriesNumber,
                SeriesDescription=header.SeriesDescription,
                num_instances=0,
                status="receiving",
                first_received=now,
                last_received=now,
                reopened_count=0,
            )
            expected = header.NumberOfSeriesRelatedInstances
            if expected:
                series.expected_instances = expected
            s.add(series)
        else:  # complete or incomplete: a late instance re-opens it
            series.note = f"re-opened: new instance after {series.status} at {now:%Y-%m-%d %H:%M:%S}"
            series.status = "receiving"
            series.reopened_count = (series.reopened_count or 0) + 1
        series.num_instances = (series.num_instances or 0) + added
        series.last_received = now
        s.flush()


def object_key(parsed: ParsedInstance) -> str:
    """An instance's key in an object store: named by its digest, so a key is never written twice with
    different bytes (a revision gets its own key) and a resend of the same bytes finds its object."""
    series = f"{parsed.StudyInstanceUID}/{parsed.SeriesInstanceUID}"
    return f"{series}/{parsed.SOPInstanceUID}.{parsed.sha256[:16]}.dcm"


def _log_revision(parsed: ParsedInstance, outcome: StoreOutcome) -> None:
    if outcome.outcome == "revision":
        log.warning(
            "SOPInstanceUID %s received again with different content: kept as revision %d",
            parsed.SOPInstanceUID,
            outcome.revision,
        )


def _fill(fd: int, path: Path, data: bytes) -> None:
    """Write a new file's bytes and close it; a file whose bytes could not all be written is removed."""
    try:
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _is_disk_full(exc: BaseException) -> bool:
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "database or disk is full" in str(exc)


def _storage_failure(exc: BaseException) -> str:
    """The reason given to the sender when an instance could not be stored (no paths, no patient data)."""
    if _is_disk_full(exc):
        return (
            "radgate's disk is full; the instance was not stored. The sender may retry once space is freed."
        )
    if isinstance(exc, BlobStoreError):  # the operator's log has exc.reason (endpoint, bucket, what failed)
        return "radgate's object store is unavailable; the instance was not stored. The sender may retry."
    return f"radgate could not store the instance durably ({type(exc).__name__}); the sender may retry."


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _close_at_exit(ref: weakref.ReferenceType[InstanceStore]) -> None:
    store = ref()
    if store is not None:
        try:
            store.close()
        except Exception:  # at exit (a test's data directory may be gone): the next start replays it
            log.debug("Closing the ingest journal at exit failed", exc_info=True)
