"""SCP processes: associations served on more than one core, behind the gateway's one listening socket.

With ``ingest.scp_processes = N`` (N > 1, or ``"auto"``: one per CPU) the DIMSE edge runs in N worker
processes. Why this split: with four associations in one process the GIL is the ceiling (about 4 ms of
Python per instance: DIMSE, parsing, hashing), while the database allows one writer anyway and duplicate and
revision detection needs one place that decides where each copy goes. So:

- the gateway process (``radgate serve``) keeps the listening socket and the database writer. It accepts
  each connection and hands it, by ``SCM_RIGHTS`` (:func:`socket.send_fds`), to the process with the fewest
  open associations; it answers their group commits (:meth:`InstanceStore.index_remote`);
- each worker (multiprocessing "spawn": a fresh interpreter, nothing inherited but the two channels) runs
  the associations: A-ASSOCIATE with the allowlist and the called AE check, TLS, DIMSE, parsing,
  rejections and quarantine with their reasons (rows written through its own connection, as ``radgate
  import`` does beside a server), the bytes written to ``instances/.incoming`` and appended to *its own*
  journal (``DATA_DIR/journal/w<n>``, its own ``flock``) with one ``fdatasync`` per batch. It then sends
  the batch's rows (:class:`~radgate.ingest.store.RemoteInstance`, no bytes) over a pipe, the gateway renames
  the files into place and commits them in one transaction, and only when the answer comes back does the
  worker send C-STORE-RSP. The durability rule is the store's: acknowledged once the journal is fsync'd (or,
  without a journal, the file) *and* the row is committed. The worker checkpoints its journal as the store
  does (its instances' files fsync'd, the database flushed, then the segment dropped).

A worker that dies takes its associations with it (their peers see the connection close: nothing of theirs
in flight was acknowledged). The gateway replays the dead worker's journal (a copy found intact is fsync'd
before its record is dropped), removes its temporary files and starts another in its place; the other
workers keep serving throughout. On start, the store replays every ``journal/w*`` a crash left
(:meth:`InstanceStore.recover_journal`). ``stop()`` stops accepting, lets each worker finish its
associations for up to ``DRAIN_S`` (then aborts them), checkpoint its journal and exit.

``server.max_associations`` is shared out: the workers' own limits add up to it exactly (there are never
more workers than it allows), and since each connection goes to the worker with the most free places, the
limit is reached before one is refused (A-ASSOCIATE-RJ, local limit exceeded) as with one process.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import multiprocessing
import os
import pickle
import select
import signal
import socket
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pynetdicom import evt
from sqlalchemy import make_url

from radgate.config import Settings
from radgate.db import Database
from radgate.ingest.journal import IngestJournal, JournalBusyError
from radgate.ingest.scp import DicomServer
from radgate.ingest.store import InstanceStore, RemoteInstance, StoreOutcome, _close_at_exit, _Pending
from radgate.logs import REPORTED

__all__ = ["ScpProcesses", "dicom_server", "scp_process_count"]

log = logging.getLogger(__name__)

#: How long a stopping worker lets its associations finish before it aborts them.
DRAIN_S = 10.0
#: How long a worker may take to start (a fresh interpreter importing pynetdicom, pydicom, SQLAlchemy).
START_S = 60.0
_STOP = b"S"
_CONNECTION = b"C"

Result = tuple[StoreOutcome | BaseException, str | None]


def scp_process_count(settings: Settings) -> int:
    """``ingest.scp_processes`` as a number (``"auto"``: the CPUs this process may run on)."""
    value = settings.ingest.scp_processes
    if value == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    return int(value)


def dicom_server(settings: Settings, store: InstanceStore) -> DicomServer | ScpProcesses:
    """The gateway's DIMSE edge: in its own process (one), or in ``ingest.scp_processes`` workers."""
    processes = scp_process_count(settings)
    if processes <= 1:
        return DicomServer(settings, store)
    return ScpProcesses(settings, store, processes)


def journal_dir(settings: Settings, index: int) -> Path:
    return settings.data_dir / "journal" / f"w{index}"


# ====================================================================== the gateway's side
@dataclass(eq=False)
class _Worker:
    """The gateway's handle on one SCP process."""

    index: int
    process: Any  # multiprocessing's SpawnProcess
    conn: Connection  # rows and answers (pickled messages)
    fds: socket.socket  # connections handed over (SCM_RIGHTS), and the stop request
    limit: int = 1  # the associations it accepts at once (its share of server.max_associations)
    active: int = 0  # associations handed over and not yet closed
    ready: threading.Event = field(default_factory=threading.Event)
    gone: bool = False
    send_lock: threading.Lock = field(default_factory=threading.Lock)


class ScpProcesses:
    """The DIMSE edge in ``processes`` worker processes; the same ``start`` / ``stop`` / ``port`` as
    :class:`~radgate.ingest.scp.DicomServer`."""

    def __init__(self, settings: Settings, store: InstanceStore, processes: int) -> None:
        self.settings = settings
        self.store = store
        self.processes = max(1, min(processes, settings.server.max_associations))  # each takes one at least
        self._context = multiprocessing.get_context("spawn")
        self._listener: socket.socket | None = None
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe()
        self._acceptor: threading.Thread | None = None
        # Whether the workers journal: only when this store journals (else each file is fsync'd, as here).
        self._journaled = store._journal is not None

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("The DICOM server is not running.")
        return int(self._listener.getsockname()[1])

    @property
    def pids(self) -> list[int]:
        """The worker processes' ids (for tests and operators)."""
        return [int(w.process.pid) for w in self._workers]

    def start(self) -> None:
        host, port = self.settings.server.host, self.settings.server.dicom_port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, port), family=family, backlog=64)
        self._listener.setblocking(False)
        address = self._listener.getsockname()[:2]
        try:
            self._workers = [self._spawn(i, address) for i in range(self.processes)]
            for w in self._workers:
                self._await_ready(w)
        except BaseException:
            self.stop()
            raise
        self._acceptor = threading.Thread(target=self._accept_loop, name="radgate-scp-accept", daemon=True)
        self._acceptor.start()
        log.info(
            "DICOM SCP %s listening on %s:%d (%d SCP processes)",
            self.settings.server.ae_title,
            host,
            self.port,
            self.processes,
            extra=REPORTED,  # `radgate serve` says so in its listening line
        )

    def stop(self) -> None:
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"\0")
        if self._acceptor is not None:
            self._acceptor.join(timeout=10)
        if self._listener is not None:
            self._listener.close()
        for w in self._workers:
            with contextlib.suppress(OSError):
                w.fds.send(_STOP)
        for w in self._workers:
            w.process.join(timeout=DRAIN_S + 60)
            if w.process.is_alive():
                log.warning("SCP process %d did not stop in time; terminated", w.index)
                w.process.terminate()
                w.process.join(timeout=10)
            w.fds.close()
            if not w.gone:
                with contextlib.suppress(OSError):
                    w.conn.close()
            self._clean_up_after(w)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    # ------------------------------------------------------------------ workers
    def _spawn(self, index: int, address: tuple[str, int]) -> _Worker:
        conn, child_conn = self._context.Pipe(duplex=True)
        fds, child_fds = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        share, extra = divmod(self.settings.server.max_associations, self.processes)
        per_worker = share + (1 if index < extra else 0)  # the shares add up to the limit
        process = self._context.Process(
            target=_worker_main,
            args=(self.settings, index, address, child_fds, child_conn, self._journaled, per_worker),
            name=f"radgate-scp-{index}",
            daemon=True,
        )
        process.start()
        child_conn.close()
        child_fds.close()
        worker = _Worker(index, process, conn, fds, limit=per_worker)
        threading.Thread(
            target=self._serve_worker, args=(worker, address), name=f"radgate-scp-{index}-rows", daemon=True
        ).start()
        return worker

    def _await_ready(self, w: _Worker) -> None:
        deadline = time.monotonic() + START_S
        while not w.ready.wait(0.1):
            if w.gone or not w.process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"SCP process {w.index} did not start (exit code {w.process.exitcode}).")

    def _serve_worker(self, w: _Worker, address: tuple[str, int]) -> None:
        """One worker's messages: its group commits (answered in order), its closed associations."""
        while True:
            try:
                message = w.conn.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "commit":
                _, seq, instances, journaling = message
                results: list[Result]
                durable = self._journaled_wait(w, seq) if journaling else None
                try:
                    results = self.store.index_remote(instances, durable)
                except Exception as exc:  # the batch as a whole failed: every instance fails with it
                    log.exception("Indexing a batch from SCP process %d failed", w.index)
                    results = [(exc, None)] * len(instances)
                try:
                    with w.send_lock:
                        w.conn.send(("committed", seq, [(_portable(r), final) for r, final in results]))
                except (OSError, ValueError):
                    break
            elif kind == "closed":
                with self._lock:
                    w.active = max(0, w.active - 1)
            elif kind == "ready":
                w.ready.set()
            # ("journaled", seq, ok) left over from a batch whose SQL failed before it waited: nothing to do
        w.gone = True
        with contextlib.suppress(OSError):
            w.conn.close()
        if self._stopping:
            return
        w.process.join(timeout=10)
        log.error(
            "SCP process %d ended (exit code %s); its open associations were aborted. Starting another.",
            w.index,
            w.process.exitcode,
        )
        self._clean_up_after(w)
        with self._lock:
            if self._stopping:
                return
        try:
            replacement = self._spawn(w.index, address)
            self._await_ready(replacement)
        except Exception:
            log.exception("Could not start another SCP process %d", w.index)
            return
        with self._lock:
            if not self._stopping:
                self._workers = [replacement if x is w else x for x in self._workers]
                return
        with contextlib.suppress(OSError):  # stopped meanwhile: this one stops too
            replacement.fds.send(_STOP)

    def _journaled_wait(self, w: _Worker, seq: int) -> Callable[[], None]:
        """What the commit of batch ``seq`` waits for before committing: the worker's word that its journal
        append (and fdatasync) of that batch succeeded. Read from the worker's pipe by this thread, which
        is the one reading it; asked again (a batch retried one by one), the same answer."""
        answer: list[bool] = []

        def wait() -> None:
            while not answer:
                try:
                    message = w.conn.recv()
                except (EOFError, OSError):
                    answer.append(False)  # it died: its journal is replayed, nothing here commits
                    break
                if message[0] == "journaled" and message[1] == seq:
                    answer.append(bool(message[2]))
                elif message[0] == "closed":
                    with self._lock:
                        w.active = max(0, w.active - 1)
            if not answer[0]:
                raise OSError(f"SCP process {w.index} could not journal the batch")

        return wait

    def _clean_up_after(self, w: _Worker) -> None:
        """What an ended worker leaves: its journal (replayed, then dropped) and its temporary files."""
        directory = journal_dir(self.settings, w.index)
        if directory.is_dir() and not self.store.recover_journal(directory):
            log.warning("The journal of SCP process %d is still held; the next start replays it", w.index)
        for path in self.store.tmp.glob(f"w{w.index}-*.part"):
            path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ accepting
    def _accept_loop(self) -> None:
        assert self._listener is not None
        watched: list[Any] = [self._listener, self._wake_r]
        while not self._stopping:
            try:
                readable, _, _ = select.select(watched, [], [], 1.0)
            except (OSError, ValueError):
                return
            if self._stopping:
                return
            if self._listener not in readable:
                continue
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                if self._stopping:
                    return
                log.exception("Accepting a DICOM connection failed")
                time.sleep(0.1)
                continue
            try:
                self._hand_over(sock, address)
            finally:
                sock.close()  # the worker has its own descriptor now (or nobody takes it: closed)

    def _hand_over(self, sock: socket.socket, address: Any) -> None:
        deadline = time.monotonic() + START_S
        message = _CONNECTION + pickle.dumps(tuple(address[:2]))
        while not self._stopping and time.monotonic() < deadline:
            with self._lock:
                ready = [w for w in self._workers if w.ready.is_set() and not w.gone]
                chosen = max(ready, key=lambda w: w.limit - w.active, default=None)  # most free places
                if chosen is not None:
                    chosen.active += 1
            if chosen is None:  # every worker is being replaced: wait for one
                time.sleep(0.05)
                continue
            try:
                socket.send_fds(chosen.fds, [message], [sock.fileno()])
                return
            except OSError:  # it died just now: the next one
                with self._lock:
                    chosen.active -= 1
                    chosen.gone = True
        log.error("No SCP process took the connection from %s; closed", address[0])


def _portable(result: StoreOutcome | BaseException) -> StoreOutcome | BaseException:
    """An error as something the worker can unpickle (what the store's failure reason needs of it)."""
    if not isinstance(result, BaseException):
        return result
    try:
        pickle.loads(pickle.dumps(result))
        return result
    except Exception:
        if isinstance(result, OSError):
            return OSError(result.errno, str(result))
        return RuntimeError(f"{type(result).__name__}: {result}")


# ====================================================================== a worker's side
class _Channel:
    """A worker's end of the pipe to the gateway: group commits sent, their answers awaited."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._send_lock = threading.Lock()
        self._waiting: dict[int, Future[list[Result]]] = {}
        self._seq = itertools.count()
        self._reader = threading.Thread(target=self._read, name="radgate-scp-answers", daemon=True)
        self._reader.start()

    def send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            self.conn.send(message)

    def commit(self, instances: list[RemoteInstance], journaling: bool) -> tuple[int, Future[list[Result]]]:
        """Send a batch; its answer comes later. ``journaling``: a ("journaled", seq, ok) follows."""
        seq = next(self._seq)
        answer: Future[list[Result]] = Future()
        self._waiting[seq] = answer
        try:
            self.send(("commit", seq, instances, journaling))
        except (OSError, ValueError) as exc:
            self._waiting.pop(seq, None)
            raise ConnectionError("the gateway process is gone") from exc
        return seq, answer

    def _read(self) -> None:
        while True:
            try:
                kind, seq, results = self.conn.recv()
            except (EOFError, OSError, ValueError):
                break
            if kind == "committed":
                answer = self._waiting.pop(seq, None)
                if answer is not None:
                    answer.set_result(results)
        for answer in list(self._waiting.values()):
            answer.set_exception(ConnectionError("the gateway process is gone"))
        self._waiting.clear()


class WorkerStore(InstanceStore):
    """An SCP process's store: parses, rejects and writes as the gateway's does, journals in its own
    directory, and leaves the index (and where each copy goes) to the gateway's group commit."""

    def __init__(
        self, settings: Settings, db: Database, index: int, channel: _Channel, journaled: bool
    ) -> None:
        self.index = index
        self._channel = channel
        self._journaled = journaled
        super().__init__(settings, db)
        self.places = False  # the gateway decides every path (copies of one UID from several processes)
        self.tmp_prefix = f"w{index}-"

    def _open_journal(self) -> None:
        if not self._journaled:
            return
        url = make_url(self.db.url)
        if self.db.backend == "sqlite" and url.database:
            self._sqlite_file = Path(url.database)  # the checkpoint flushes the gateway's commits too
        try:
            journal = IngestJournal(journal_dir(self.settings, self.index))
        except (JournalBusyError, OSError) as exc:
            log.warning("SCP process %d has no journal (%s): fsync each instance", self.index, exc)
            return
        self._journal = journal
        atexit.register(_close_at_exit, weakref.ref(self))

    def _commit_batch(self, batch: list[_Pending]) -> None:
        try:
            with self.lock:
                results = self._commit_remote(batch)
        except Exception as exc:
            for it in batch:
                it.error = exc
                it.done.set()
            return
        for it, (result, _) in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                it.error = result
            else:
                it.outcome = result
            it.done.set()

    def _commit_remote(self, batch: list[_Pending]) -> list[Result]:
        """Have the gateway index the batch while this journals it (one fdatasync): the gateway runs the SQL
        meanwhile and commits only once told the append succeeded, as the store overlaps its own append
        with its SQL. Under this store's lock, so that a checkpoint never drops a segment whose rows are
        not committed yet."""
        journal = self._journal
        ours = [it for it in batch if it.journal] if journal is not None else []
        seq, answer = self._channel.commit([RemoteInstance.of(it) for it in batch], journaling=bool(ours))
        mark = None
        failed: BaseException | None = None
        if journal is not None and ours:
            try:
                mark = journal.append([(self._record(it), it.parsed.data) for it in ours])
            except BaseException as exc:  # nothing half-written stays (append cuts itself back)
                failed = exc
            with contextlib.suppress(OSError, ValueError):
                self._channel.send(("journaled", seq, failed is None))
        try:
            results = answer.result()
        except BaseException:
            if mark is not None and journal is not None:
                journal.undo(mark)  # not indexed, not acknowledged
            raise
        if failed is not None:
            raise failed  # the gateway committed none of it (it waited for this append)
        # Each file is now under the path the gateway chose; this journal's checkpoint makes it durable.
        self.last_activity = time.monotonic()
        if journal is not None and mark is not None:
            journal.track(
                [
                    Path(final)
                    for it, (result, final) in zip(batch, results, strict=True)
                    if it.journal and final is not None and not isinstance(result, BaseException)
                ]
            )
            self._journal_appended(journal)
        return results


def _worker_main(
    settings: Settings,
    index: int,
    address: tuple[str, int],
    fds: socket.socket,
    conn: Connection,
    journaled: bool,
    max_associations: int,
) -> None:
    """An SCP process: serve the connections the gateway hands over until it says stop (or goes away)."""
    from radgate import logs

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the gateway stops us
    logs.configure(
        settings.log_level, settings.log_format, "stdout", timestamps=settings.log_format == "human"
    )
    db = Database(
        settings.database_url,
        echo=settings.database.echo,
        sqlite_synchronous=settings.database.sqlite_synchronous,
    )
    channel = _Channel(conn)
    store = WorkerStore(settings, db, index, channel, journaled)
    settings = settings.model_copy(deep=True)
    settings.server.max_associations = max_associations
    dicom = DicomServer(settings, store)
    server = dicom.handed_server(address)

    def closed(event: Any) -> None:
        with contextlib.suppress(OSError, ValueError):
            channel.send(("closed",))

    server.bind(evt.EVT_CONN_CLOSE, closed)

    def serve(sock: socket.socket, peer: tuple[str, int]) -> None:
        try:
            dicom.serve_connection(sock, peer)
        except Exception as exc:  # a failed TLS handshake, a peer gone at once: that connection only
            log.warning("Connection from %s dropped before its association: %s", peer[0], exc)
            sock.close()
            closed(None)

    channel.send(("ready",))
    while True:
        try:
            message, descriptors, _, _ = socket.recv_fds(fds, 4096, 1)
        except OSError:
            break
        if not message or message == _STOP:
            for fd in descriptors:
                os.close(fd)
            break
        if not descriptors:
            continue
        sock = socket.socket(fileno=descriptors[0])
        peer = pickle.loads(message[len(_CONNECTION) :])
        threading.Thread(target=serve, args=(sock, peer), name="radgate-scp-connection", daemon=True).start()
    _drain(server)
    store.close()  # checkpoint this process's journal: nothing left to replay
    db.dispose()


def _drain(server: Any) -> None:
    deadline = time.monotonic() + DRAIN_S
    while server.active_associations and time.monotonic() < deadline:
        time.sleep(0.05)
    for assoc in server.active_associations:
        assoc.abort()
    for assoc in server.active_associations:
        assoc.join(timeout=5)
