"""Ingest benchmark: the same instances sent with DCMTK storescu to radgate, Orthanc and DCMTK storescp.

    .venv/bin/python bench/ingest.py [--n 1000] [--size 512] [--ct 500] [--repeats 3]

Three scenarios, each measured for the three receivers in alternating order, repeated; the figures are
medians of instances/s and the median of the per-round ratios:

- one association: ``storescu +sd`` sends N DX instances (SIZE² 16-bit, explicit VR little endian);
- four associations: the same N instances split in four folders, four ``storescu`` at once (what a PACS
  does when it pushes a study);
- a CT-sized series: CT instances (500 x 512² 16-bit by default) in one association, timed from the first
  instance sent to the last one acknowledged, i.e. stored (radgate acknowledges an instance only once its
  file is fsync'd and its row committed).

Receivers: radgate as ``radgate serve`` with its defaults (SQLite; each instance acknowledged once the ingest
journal holding it is fsync'd; the data directory a copy of one ``radgate init`` made per checkout and run);
Orthanc (Debian package: files + SQLite index, its defaults, ``TcpNoDelay``); DCMTK storescp (writes files,
no fsync, no database: the upper bound on this machine). Every DCMTK tool gets ``TCP_NODELAY=1``
(shared BENCHMARKS.md: without it Nagle's algorithm stalls DCMTK on loopback).
Targets (issue 15): radgate >= 1.0x Orthanc with one association; >= 0.5x storescp with four.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from radgate.testing.peers import OrthancServer, free_port  # noqa: E402
from tests.dicomgen import make_dx  # noqa: E402

ENV = dict(os.environ, TCP_NODELAY="1", PYTHONPATH=str(ROOT))
RADGATE = str(Path(sys.executable).parent / "radgate")
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def make_files(n: int, size: int, kind: str = "dx") -> Path:
    folder = ROOT / ".tmp" / "bench" / f"ingest-{kind}-{n}-{size}"
    if folder.is_dir() and len(list(folder.glob("*.dcm"))) == n:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    study = "1.2.826.0.1.3680043.10.543.5000" + ("1" if kind == "ct" else "")
    for i in range(n):
        ds = make_dx(study, f"{study}.1", f"{study}.1.{i}", size=size, seed=i)
        ds.InstanceNumber = i + 1
        if kind == "ct":
            ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
            ds.Modality = "CT"
            ds.ImagePositionPatient = [0.0, 0.0, float(i)]
            ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
            ds.PixelSpacing = [0.7, 0.7]
            ds.SliceThickness = 1.0
        ds.save_as(folder / f"{i:05d}.dcm", enforce_file_format=True)
    return folder


def split(folder: Path, parts: int) -> list[Path]:
    """The folder's files as ``parts`` sub-folders of hard links (made once)."""
    out = []
    files = sorted(folder.glob("*.dcm"))
    for k in range(parts):
        sub = folder / f"part{parts}-{k}"
        if not sub.is_dir():
            sub.mkdir()
            for f in files[k::parts]:
                os.link(f, sub / f.name)
        out.append(sub)
    return out


def settle() -> None:
    """Write back what the previous receiver left in the page cache before the next one is timed.

    storescp and Orthanc never fsync, so each leaves hundreds of MB dirty; the kernel writes them back
    during the next run, where they queue in front of that receiver's own flushes (radgate's journal is
    fsync'd before each acknowledgement). Every receiver starts from a settled disk.
    """
    os.sync()


def send(port: int, folders: list[Path], aec: str) -> float:
    """Wall time for one storescu per folder, all at once, until the last one has its answers."""
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            ["storescu", "-aec", aec, "+sd", "127.0.0.1", str(port), str(f)],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in folders
    ]
    errors = [p.communicate()[1] for p in procs]
    elapsed = time.perf_counter() - start
    for p, err in zip(procs, errors, strict=True):
        if p.returncode != 0:
            raise RuntimeError(f"storescu failed: {err[-500:]}")
    return elapsed


@contextlib.contextmanager
def storescp() -> Iterator[tuple[int, str]]:
    out = Path(tempfile.mkdtemp(prefix="bench-storescp-"))
    port = free_port()
    proc = subprocess.Popen(
        ["storescp", "-od", str(out), str(port)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            echo = subprocess.run(["echoscu", "127.0.0.1", str(port)], env=ENV, capture_output=True)
            if echo.returncode == 0:
                break
            time.sleep(0.05)
        yield port, "ANY-SCP"
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(out, ignore_errors=True)


@contextlib.contextmanager
def orthanc() -> Iterator[tuple[int, str]]:
    with OrthancServer(aet="ORTHANC") as server:
        yield server.dicom_port, "ORTHANC"


_TEMPLATES: dict[Path, Path] = {}


def initialised_data_dir(checkout: Path, env: dict[str, str]) -> Path:
    """A fresh data directory: a copy of one made by ``radgate init`` once per checkout and run (init
    migrates the database, which takes seconds; copying it takes milliseconds)."""
    template = _TEMPLATES.get(checkout)
    if template is None:
        template = Path(tempfile.mkdtemp(prefix="bench-radgate-init-")) / "data"
        atexit.register(shutil.rmtree, template.parent, ignore_errors=True)
        subprocess.run([RADGATE, "init", str(template)], env=env, check=True, capture_output=True)
        _TEMPLATES[checkout] = template
    data = Path(tempfile.mkdtemp(prefix="bench-radgate-")) / "data"
    shutil.copytree(template, data)
    return data


@contextlib.contextmanager
def radgate(checkout: Path = ROOT, scp_processes: int | None = None) -> Iterator[tuple[int, str]]:
    env = dict(ENV, RADGATE_LOG_LEVEL="WARNING", PYTHONPATH=str(checkout))
    if scp_processes is not None:
        env["RADGATE_INGEST_SCP_PROCESSES"] = str(scp_processes)
    env.pop("RADGATE_CONFIG", None)
    data = initialised_data_dir(checkout, env)
    argv = [RADGATE, "serve", "--data-dir", str(data), "--dicom-port", "0", "--http-port", "0"]
    argv += ["--log-format", "json"]  # one JSON object per event; the "listening" one has the ports
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        port = None
        for line in proc.stdout:
            if line.startswith("{") and json.loads(line).get("event") == "listening":
                port = json.loads(line)["dicom_port"]
                break
        if port is None:
            raise RuntimeError("radgate serve did not start")
        yield int(port), "RADGATE"
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data.parent, ignore_errors=True)


RECEIVERS: dict[str, Callable[[], contextlib.AbstractContextManager[tuple[int, str]]]] = {
    "storescp": storescp,
    "orthanc": orthanc,
    "radgate": radgate,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="DX instances for the 1- and 4-association runs")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--ct", type=int, default=500, help="CT instances (512² 16-bit) in the series run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["one", "four", "ct"], action="append", help="scenarios to run")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout (e.g. before a change), measured as 'radgate@base'"
    )
    parser.add_argument(
        "--scp-processes",
        type=int,
        help="also measure radgate with ingest.scp_processes = N, as 'radgate-mpN'",
    )
    args = parser.parse_args()
    if args.baseline:
        RECEIVERS["radgate@base"] = lambda: radgate(args.baseline.resolve())
    mp = f"radgate-mp{args.scp_processes}" if args.scp_processes else None
    if mp:
        RECEIVERS[mp] = lambda: radgate(scp_processes=args.scp_processes)

    dx = make_files(args.n, args.size)
    scenarios = {
        "one": (f"1 association, {args.n} DX {args.size}²", [dx], args.n),
        "four": (f"4 associations, {args.n} DX {args.size}²", split(dx, 4), args.n),
        "ct": (f"CT series, {args.ct} x 512² in 1 association", [make_files(args.ct, 512, "ct")], args.ct),
    }
    chosen = args.only or list(scenarios)
    rates: dict[str, dict[str, list[float]]] = {s: {r: [] for r in RECEIVERS} for s in chosen}
    seconds: dict[str, list[float]] = {s: [] for s in chosen}
    names = list(RECEIVERS)
    for repeat in range(args.repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for scenario in chosen:
            _, folders, n = scenarios[scenario]
            for name in order:
                settle()
                with RECEIVERS[name]() as (port, aec):
                    elapsed = send(port, folders, aec)
                rates[scenario][name].append(n / elapsed)
                if name == "radgate":
                    seconds[scenario].append(elapsed)
            line = ", ".join(f"{r} {rates[scenario][r][-1]:.0f}/s" for r in names)
            print(f"  round {repeat + 1} {scenario}: {line}", flush=True)

    def ratio(scenario: str, peer: str, ours: str = "radgate") -> float:
        per_round = zip(rates[scenario][ours], rates[scenario][peer], strict=True)
        return statistics.median(a / b for a, b in per_round)

    print()
    for scenario in chosen:
        title = scenarios[scenario][0]
        print(f"{title}: " + ", ".join(f"{r} {statistics.median(rates[scenario][r]):.0f}/s" for r in names))
        print(
            f"  radgate / storescp {ratio(scenario, 'storescp'):.2f}x, radgate / orthanc "
            f"{ratio(scenario, 'orthanc'):.2f}x; radgate took {statistics.median(seconds[scenario]):.2f} s"
            + (f"; radgate / radgate@base {ratio(scenario, 'radgate@base'):.2f}x" if args.baseline else "")
        )
        if mp:
            print(
                f"  {mp} / storescp {ratio(scenario, 'storescp', mp):.2f}x, {mp} / orthanc "
                f"{ratio(scenario, 'orthanc', mp):.2f}x, {mp} / radgate {ratio(scenario, 'radgate', mp):.2f}x"
            )
    if "one" in chosen:
        r = ratio("one", "orthanc")
        print(f"target 1 association: radgate >= 1.0x orthanc -> {r:.2f}x {'met' if r >= 1.0 else 'NOT met'}")
    if "four" in chosen:
        r = ratio("four", "storescp")
        print(
            f"target 4 associations: radgate >= 0.5x storescp -> {r:.2f}x {'met' if r >= 0.5 else 'NOT met'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
