"""Ingest benchmark: the same N instances sent with DCMTK storescu to radgate and to DCMTK storescp.

    .venv/bin/python bench/ingest.py [--n 1000] [--size 512] [--repeats 3]

Both receivers run in the same process tree on this machine, alternate, and are measured repeatedly; the
figure is the median ratio of instances/s (radgate / storescp). storescu and storescp get TCP_NODELAY=1
(see shared BENCHMARKS.md: without it Nagle's algorithm stalls DCMTK on loopback). radgate runs as
``radgate serve`` with its defaults (SQLite, fsync per instance, header parse and index row per instance);
storescp only writes files (no fsync, no database), so it is the upper bound of what a DICOM receiver on
this machine can do.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from radgate.testing.peers import free_port  # noqa: E402
from tests.dicomgen import make_dx  # noqa: E402

ENV = dict(os.environ, TCP_NODELAY="1")


def make_files(n: int, size: int) -> Path:
    folder = ROOT / ".tmp" / "bench" / f"ingest-{n}-{size}"
    if folder.is_dir() and len(list(folder.iterdir())) == n:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    study = "1.2.826.0.1.3680043.10.543.5000"
    for i in range(n):
        ds = make_dx(study, f"{study}.1", f"{study}.1.{i}", size=size, seed=i)
        ds.InstanceNumber = i + 1
        ds.save_as(folder / f"{i:05d}.dcm", enforce_file_format=True)
    return folder


def send(port: int, folder: Path, aec: str) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        ["storescu", "-aec", aec, "+sd", "127.0.0.1", str(port), str(folder)],
        env=ENV,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"storescu failed: {result.stderr[-500:]}")
    return elapsed


def run_storescp(folder: Path) -> float:
    out = Path(tempfile.mkdtemp(prefix="bench-storescp-"))
    port = free_port()
    proc = subprocess.Popen(
        ["storescp", "-od", str(out), str(port)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if (
                subprocess.run(["echoscu", "127.0.0.1", str(port)], env=ENV, capture_output=True).returncode
                == 0
            ):
                break
            time.sleep(0.05)
        return send(port, folder, "ANY-SCP")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(out, ignore_errors=True)


def run_radgate(folder: Path, fsync: bool) -> float:
    data = Path(tempfile.mkdtemp(prefix="bench-radgate-"))
    env = dict(
        ENV,
        RADGATE_INGEST_FSYNC="true" if fsync else "false",
        RADGATE_DATABASE_SQLITE_SYNCHRONOUS="FULL" if fsync else "NORMAL",
        RADGATE_LOG_LEVEL="WARNING",
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "radgate",
            "serve",
            "--data-dir",
            str(data),
            "--dicom-port",
            "0",
            "--http-port",
            "0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = None
        for line in proc.stdout:
            if line.startswith("{"):
                port = json.loads(line)["dicom_port"]
                break
        if port is None:
            raise RuntimeError("radgate serve did not start")
        return send(int(port), folder, "RADGATE")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = make_files(args.n, args.size)
    mb = sum(f.stat().st_size for f in folder.iterdir()) / 1e6
    print(f"{args.n} instances, {args.size}x{args.size} 16-bit, {mb:.0f} MB, one association, storescu +sd")
    rows: dict[str, list[float]] = {"storescp": [], "radgate": [], "radgate (no fsync)": []}
    for r in range(args.repeats):
        rows["storescp"].append(args.n / run_storescp(folder))
        rows["radgate"].append(args.n / run_radgate(folder, fsync=True))
        rows["radgate (no fsync)"].append(args.n / run_radgate(folder, fsync=False))
        print(f"  repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in rows.items()), flush=True)
    base = statistics.median(rows["storescp"])
    print(f"{'receiver':<22}{'median inst/s':>14}{'ratio vs storescp':>20}")
    for name, values in rows.items():
        med = statistics.median(values)
        ratios = [v / s for v, s in zip(values, rows["storescp"], strict=True)]
        print(f"{name:<22}{med:>14.0f}{statistics.median(ratios):>20.2f}")
    print(
        f"target: radgate >= 0.5x storescp -> {'met' if statistics.median([v / s for v, s in zip(rows['radgate'], rows['storescp'], strict=True)]) >= 0.5 else 'NOT met'}"
    )
    del base


if __name__ == "__main__":
    main()
