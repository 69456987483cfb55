"""Run fuzz cases against a real ``radgate serve`` process by C-STORE and STOW-RS, and account for each.

The server is a separate process (as a site runs it), so a crash is visible as a dead process and its
memory is its own: the peak is the kernel's high-water mark (``VmHWM``) of that process. Each case gets
one answer or counts against the run:

* **crash**: the server process died, or answered with an unhandled-error status (C-STORE 0xC2xx from
  pynetdicom's handler guard, HTTP 5xx), or a failure without a reason (C-STORE Error Comment, STOW-RS
  FailedSOPSequence Error Comment), or dropped the association/connection without an answer;
* **hang**: no answer within the per-case timeout;
* **lost**: acknowledged as stored (C-STORE 0x0000/0xB0xx, STOW ReferencedSOPSequence) but not in the index;
* **duplicated**: the index holds the same SOP Instance UID with the same content twice.

Afterwards the harness waits until the pixel checker has checked every stored instance (a stuck checker
shows as ``unchecked``), then sends a valid synthetic series and waits for it to be stored, decoded and
assembled.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pydicom
from pydicom.filereader import read_file_meta_info
from pynetdicom import AE, _config

from tests.fuzz.mutators import KINDS, Case
from tests.helpers.datadir import make_data_dir

# Send the file's dataset bytes as they are (after the file meta), not re-encoded by pydicom: what a
# modality's corrupt file would put on the wire.
_config.STORE_SEND_CHUNKED_DATASET = True

__all__ = ["FuzzReport", "FuzzServer", "run_cases"]

CASE_TIMEOUT_S = 60.0


@dataclass
class KindStats:
    cases: int = 0
    dimse: int = 0
    stow: int = 0
    stored: int = 0
    rejected: int = 0
    crashes: int = 0
    hangs: int = 0
    statuses: Counter[str] = field(default_factory=Counter)


@dataclass
class FuzzReport:
    kinds: dict[str, KindStats] = field(default_factory=lambda: defaultdict(KindStats))
    acknowledged: set[str] = field(default_factory=set)
    lost: int = 0
    duplicated: int = 0
    unchecked: int = 0
    peak_rss_bytes: int = 0
    valid_series_flowed: bool = False
    valid_series_note: str = ""
    server_alive: bool = True
    seconds: float = 0.0
    crash_examples: list[str] = field(default_factory=list)

    @property
    def crashes(self) -> int:
        return sum(k.crashes for k in self.kinds.values())

    @property
    def hangs(self) -> int:
        return sum(k.hangs for k in self.kinds.values())

    @property
    def cases(self) -> int:
        return sum(k.cases for k in self.kinds.values())

    def ok(self) -> bool:
        return (
            self.crashes == 0
            and self.hangs == 0
            and self.lost == 0
            and self.duplicated == 0
            and self.unchecked == 0
            and self.server_alive
            and self.valid_series_flowed
        )

    def table(self) -> str:
        head = f"{'kind':<12} {'cases':>6} {'dimse':>6} {'stow':>6} {'stored':>7} {'rejected':>8} "
        head += f"{'crashes':>7} {'hangs':>6}  statuses"
        lines = [head, "-" * len(head)]
        for name, k in sorted(self.kinds.items()):
            statuses = ", ".join(f"{s}:{n}" for s, n in k.statuses.most_common(4))
            lines.append(
                f"{name:<12} {k.cases:>6} {k.dimse:>6} {k.stow:>6} {k.stored:>7} {k.rejected:>8} "
                f"{k.crashes:>7} {k.hangs:>6}  {statuses}"
            )
        total = KindStats()
        for k in self.kinds.values():
            for attr in ("cases", "dimse", "stow", "stored", "rejected", "crashes", "hangs"):
                setattr(total, attr, getattr(total, attr) + getattr(k, attr))
        lines.append("-" * len(head))
        lines.append(
            f"{'total':<12} {total.cases:>6} {total.dimse:>6} {total.stow:>6} {total.stored:>7} "
            f"{total.rejected:>8} {total.crashes:>7} {total.hangs:>6}"
        )
        lines.append(
            f"lost {self.lost}, duplicated {self.duplicated}, unchecked after drain {self.unchecked}, "
            f"server alive {self.server_alive}, peak server memory (VmHWM) {self.peak_rss_bytes / 2**20:.0f} MiB, "
            f"valid series afterwards: {'stored, decoded, complete' if self.valid_series_flowed else 'NO'}"
            f"{' (' + self.valid_series_note + ')' if self.valid_series_note else ''}, {self.seconds:.0f} s"
        )
        for example in self.crash_examples[:10]:
            lines.append(f"  crash: {example}")
        return "\n".join(lines)


class FuzzServer:
    """``radgate serve`` in its own process with a throwaway data directory."""

    def __init__(self, data_dir: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="radgate-fuzz-"))
        self.env = dict(
            os.environ,
            RADGATE_LOG_LEVEL="WARNING",
            RADGATE_INGEST_FSYNC="false",
            RADGATE_DATABASE_SQLITE_SYNCHRONOUS="NORMAL",
            RADGATE_ASSEMBLY_QUIET_PERIOD_S="1.0",
            RADGATE_ASSEMBLY_POLL_INTERVAL_S="0.2",
            RADGATE_SERVER_NETWORK_TIMEOUT_S="20",
            PYTHONWARNINGS="ignore",
            RUST_BACKTRACE="0",
        )
        self.env.update(env or {})
        self.proc: subprocess.Popen[str] | None = None
        self.token = ""
        self.dicom_port = self.http_port = 0
        self.log_path = self.data_dir / "server.log"

    def start(self) -> None:
        make_data_dir(self.data_dir)
        log = open(self.log_path, "w")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "radgate", "serve", "--data-dir", str(self.data_dir)]
            + ["--dicom-port", "0", "--http-port", "0", "--log-format", "json"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 120
        for line in self.proc.stdout:
            if line.startswith("{") and json.loads(line).get("event") == "listening":
                ready = json.loads(line)
                self.dicom_port, self.http_port = int(ready["dicom_port"]), int(ready["http_port"])
                break
            if time.monotonic() > deadline:
                break
        if not self.dicom_port:
            raise RuntimeError(f"radgate serve did not start; see {self.log_path}")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # drain stdout
        if not self.token:  # STOW-RS needs credentials like any client (an admin's API token)
            from radgate.db import open_database
            from tests.helpers.auth import make_token

            db = open_database(f"sqlite:///{self.data_dir / 'radgate.sqlite'}", migrate=False)
            try:
                self.token = make_token(db, username="fuzzer")
            finally:
                db.dispose()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def peak_rss(self) -> int:
        assert self.proc is not None
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def query(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        db = sqlite3.connect(f"file:{self.data_dir / 'radgate.sqlite'}?mode=ro", uri=True, timeout=30)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()


# ----------------------------------------------------------------------------------------------- sending
def _send_dimse(server: FuzzServer, case: Case, folder: Path) -> tuple[str, str | None]:
    """C-STORE the case's file as pynetdicom sends from a file (the dataset bytes after the meta, raw).

    Returns (outcome, acknowledged SOP Instance UID): outcome is a status like ``0xC000``, or ``crash:...``
    / ``hang``.
    """
    path = folder / f"case-{case.index}.dcm"
    path.write_bytes(case.data)
    meta = read_file_meta_info(path)
    ae = AE(ae_title="FUZZER")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = CASE_TIMEOUT_S
    ae.add_requested_context(meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID)
    start = time.monotonic()
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="RADGATE")
    try:
        if not assoc.is_established:
            return ("hang" if time.monotonic() - start >= CASE_TIMEOUT_S else "crash:no association"), None
        status = assoc.send_c_store(path)
        elapsed = time.monotonic() - start
        if not status or "Status" not in status:
            return ("hang" if elapsed >= CASE_TIMEOUT_S else "crash:no C-STORE response"), None
        code = int(status.Status)
        if code & 0xFF00 == 0xC200 or code == 0x0110:
            return f"crash:0x{code:04X} {status.get('ErrorComment', '')}", None
        acked = (
            str(meta.MediaStorageSOPInstanceUID).strip("\x00 ") if code == 0 or code >> 12 == 0xB else None
        )
        return f"0x{code:04X}", acked
    finally:
        if assoc.is_established:
            assoc.release()
        path.unlink(missing_ok=True)


def _send_stow(server: FuzzServer, case: Case, client: httpx.Client) -> tuple[str, str | None]:
    boundary = "radgate-fuzz-boundary-7f3a"
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + case.data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Authorization": f"Bearer {server.token}",
    }
    url = f"http://127.0.0.1:{server.http_port}/dicomweb/studies"
    try:
        try:
            r = client.post(url, content=body, headers=headers)
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
            # A pooled keep-alive connection the server closed while this sender was idle (uvicorn's
            # keep-alive timeout is 5 s; a sender generating a 700 MiB bomb idles longer): what any HTTP
            # client does is send again on a new connection. A server that drops requests fails again.
            r = httpx.post(url, content=body, headers=headers, timeout=CASE_TIMEOUT_S)
    except httpx.TimeoutException:
        return "hang", None
    except httpx.HTTPError as exc:
        return f"crash:{type(exc).__name__}", None
    if r.status_code >= 500:
        return f"crash:HTTP {r.status_code} {r.text[:100]}", None
    if r.status_code not in (200, 202, 409):
        return (
            f"HTTP {r.status_code}"
            if r.headers.get("content-type", "").endswith("json")
            else f"crash:HTTP {r.status_code} without a reason"
        ), None
    response = pydicom.Dataset.from_json(r.json())
    for item in response.get("ReferencedSOPSequence", []):
        return f"HTTP {r.status_code}", str(item.ReferencedSOPInstanceUID)
    failed = response.get("FailedSOPSequence", [])
    if not failed or not failed[0].get((0x0000, 0x0902)):
        return f"crash:HTTP {r.status_code} without a failure reason", None
    return f"HTTP {r.status_code} 0x{int(failed[0].FailureReason):04X}", None


def run_cases(
    server: FuzzServer, cases: Iterable[Case], *, workers: int = 2, progress: bool = False
) -> FuzzReport:
    """Send every case (``workers`` senders at a time: the server serves concurrent callers) and account."""
    report = FuzzReport()
    start = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="radgate-fuzz-cases-"))
    lock = threading.Lock()
    done = 0

    def one(case: Case, client: httpx.Client) -> None:
        nonlocal done
        by_dimse = not case.stow_only and (case.index // len(KINDS)) % 2 == 0
        try:
            if by_dimse:
                outcome, acked = _send_dimse(server, case, folder)
            else:
                outcome, acked = _send_stow(server, case, client)
        except Exception as exc:  # the sender itself could not send this case: not radgate's fault
            outcome, acked = f"unsendable:{type(exc).__name__}", None
        if not server.alive():
            outcome = "crash:server process died"
        with lock:
            stats = report.kinds[case.kind]
            stats.cases += 1
            if by_dimse:
                stats.dimse += 1
            else:
                stats.stow += 1
            stats.statuses[outcome.split(" ", 2)[0] if outcome.startswith("crash") else outcome] += 1
            if outcome.startswith("crash"):
                stats.crashes += 1
                report.crash_examples.append(f"case {case.index} ({case.kind}, {case.seed_name}): {outcome}")
            elif outcome == "hang":
                stats.hangs += 1
                report.crash_examples.append(f"case {case.index} ({case.kind}, {case.seed_name}): hang")
            elif acked:
                stats.stored += 1
                report.acknowledged.add(acked)
            else:
                stats.rejected += 1
            done += 1
            if progress and done % 100 == 0:
                print(f"  {done} cases, {time.monotonic() - start:.0f} s", file=sys.stderr)

    iterator = iter(cases)  # generation happens under the lock, in the sender threads

    def sender() -> None:
        with httpx.Client(timeout=CASE_TIMEOUT_S) as client:
            while server.alive():
                with lock:
                    case = next(iterator, None)
                if case is None:
                    return
                one(case, client)

    threads = [threading.Thread(target=sender, name=f"fuzz-sender-{i}") for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _account(server, report)
    report.seconds = time.monotonic() - start
    return report


def _account(server: FuzzServer, report: FuzzReport) -> None:
    report.server_alive = server.alive()
    if not report.server_alive:
        return
    indexed = {str(r[0]) for r in server.query("SELECT SOPInstanceUID FROM instances")}
    report.lost = len(report.acknowledged - indexed)
    dup = server.query(
        "SELECT COUNT(*) FROM (SELECT 1 FROM instances GROUP BY SOPInstanceUID, sha256 HAVING COUNT(*) > 1)"
    )
    report.duplicated = int(dup[0][0])  # type: ignore[call-overload]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        report.unchecked = int(
            server.query("SELECT COUNT(*) FROM instances WHERE pixel_status = 'unchecked'")[0][0]  # type: ignore[call-overload]
        )
        if report.unchecked == 0 or not server.alive():
            break
        time.sleep(0.5)
    _send_valid_series(server, report)
    report.peak_rss_bytes = server.peak_rss()
    report.server_alive = server.alive()


def _send_valid_series(server: FuzzServer, report: FuzzReport) -> None:
    """A valid synthetic series (three images of one vendor profile) after the storm must flow through."""
    from pydicom.uid import generate_uid

    from radgate.synth import builtin_scenario, image_jobs, render_job

    job = image_jobs(builtin_scenario("all-profiles"), 11)[0]
    study, series = generate_uid(), generate_uid()
    ae = AE(ae_title="FUZZVALID")
    datasets = []
    for i in range(3):
        ds = render_job(job)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, series, generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i + 1
        datasets.append(ds)
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="RADGATE")
    if not assoc.is_established:
        report.valid_series_note = "association refused"
        return
    try:
        statuses = [assoc.send_c_store(ds) for ds in datasets]
    finally:
        assoc.release()
    if not all(s and int(s.Status) == 0 for s in statuses):
        report.valid_series_note = "not acknowledged"
        return
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        rows = server.query("SELECT status FROM series WHERE SeriesInstanceUID = ?", series)
        pixels = server.query("SELECT pixel_status FROM instances WHERE SeriesInstanceUID = ?", series)
        if rows and rows[0][0] == "complete" and len(pixels) == 3 and {p[0] for p in pixels} == {"ok"}:
            report.valid_series_flowed = True
            return
        time.sleep(0.5)
    report.valid_series_note = f"series {rows}, pixels {pixels}"
