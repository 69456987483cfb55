"""`radgate validate` on a 1,000,000-row CSV against a numpy + scikit-learn process reading the same file.

    .venv/bin/python bench/validate.py [--rows 1000000] [--repeats 5] [--radgate PATH]

The whole command a user runs (``.venv/bin/radgate validate cases.csv --score-col score --label-col label
--json``: start-up, reading the CSV, AUC + DeLong CI, Wilson intervals, PPV/NPV, the JSON) is timed against
a peer process that reads the same CSV with ``numpy.loadtxt`` and computes ``sklearn.metrics.roc_auc_score``
(AUC only). They alternate, each repeated; the figures are the medians of wall time and of peak resident
memory (``ru_maxrss`` of each process, from ``wait4``). Targets (issue 15): time <= 2x the peer, peak
memory <= 300 MB.

The CSV has the columns a `radgate predictions export` joined with reference labels would have: a UID, the
score, the 0/1 label and a vendor column (not used by the command here). ``--radgate-path DIR`` runs
another checkout's package (e.g. the code before a change) through the same console script.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RADGATE = str(Path(sys.executable).parent / "radgate")
TARGET_RATIO = 2.0
TARGET_MB = 300.0

PEER = """
import sys
import numpy as np
from sklearn.metrics import roc_auc_score
data = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, usecols=(1, 2))
print(roc_auc_score(data[:, 1].astype(np.int8), data[:, 0]))
"""


def make_csv(rows: int) -> Path:
    path = ROOT / ".tmp" / "bench" / f"validate-{rows}.csv"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(15)
    labels = (rng.random(rows) < 0.2).astype(np.int8)
    scores = 1 / (1 + np.exp(-(rng.normal(size=rows) + 1.5 * labels - 1)))
    vendors = np.array(["GE", "Siemens", "Philips", "Canon", "Fujifilm", "Agfa"])[rng.integers(0, 6, rows)]
    tmp = path.with_suffix(".part")
    with tmp.open("w") as fh:
        fh.write("StudyInstanceUID,score,label,vendor\n")
        for start in range(0, rows, 100_000):
            end = min(rows, start + 100_000)
            fh.writelines(
                f"1.2.826.0.1.3680043.10.543.{i},{scores[i]:.6f},{labels[i]},{vendors[i]}\n"
                for i in range(start, end)
            )
    tmp.rename(path)
    return path


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stdout of one process, its RSS from wait4 (per process)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed ({proc.returncode}): {err.decode()[-800:]}")
    return elapsed, usage.ru_maxrss / 1024, out.decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--radgate-path", type=Path, default=ROOT, help="checkout whose radgate package runs")
    args = parser.parse_args()

    csv_path = make_csv(args.rows)
    env = dict(os.environ, PYTHONPATH=str(args.radgate_path.resolve()))
    env.pop("RADGATE_CONFIG", None)
    env["RADGATE_DATA_DIR"] = str(ROOT / ".tmp" / "bench" / "validate-data")
    ours = [RADGATE, "validate", str(csv_path), "--score-col", "score", "--label-col", "label", "--json"]
    peer = [sys.executable, "-c", PEER, str(csv_path)]

    times: dict[str, list[float]] = {"radgate": [], "peer": []}
    rss: dict[str, list[float]] = {"radgate": [], "peer": []}
    ratios: list[float] = []
    auc = {}
    for r in range(args.repeats):
        order = [("radgate", ours), ("peer", peer)] if r % 2 == 0 else [("peer", peer), ("radgate", ours)]
        got = {}
        for name, argv in order:
            seconds, mb, out = run(argv, env)
            times[name].append(seconds)
            rss[name].append(mb)
            got[name] = seconds
            auc[name] = json.loads(out)["auc"] if name == "radgate" else float(out)
        ratios.append(got["radgate"] / got["peer"])
    if abs(auc["radgate"] - auc["peer"]) > 1e-9:
        raise SystemExit(f"AUC mismatch: radgate {auc['radgate']!r} vs sklearn {auc['peer']!r}")

    ratio = statistics.median(ratios)
    mb = statistics.median(rss["radgate"])
    print(f"radgate validate, {args.rows:,} rows ({csv_path.stat().st_size / 1e6:.0f} MB CSV), {args.repeats} rounds")
    print(f"  radgate validate  median {statistics.median(times['radgate']):6.2f} s, peak RSS {mb:6.0f} MB")
    print(
        f"  numpy + sklearn   median {statistics.median(times['peer']):6.2f} s, "
        f"peak RSS {statistics.median(rss['peer']):6.0f} MB"
    )
    print(
        f"  median time ratio {ratio:.2f}x ({'meets' if ratio <= TARGET_RATIO else 'MISSES'} <= {TARGET_RATIO:g}x); "
        f"peak memory {mb:.0f} MB ({'meets' if mb <= TARGET_MB else 'MISSES'} <= {TARGET_MB:g} MB)"
    )
    print(f"  AUC {auc['radgate']:.6f} (both)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
