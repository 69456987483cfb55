"""Benchmark radgate.stats: AUC + DeLong CI on 1,000,000 cases vs scikit-learn's roc_auc_score (AUC alone),
and 2,000 stratified bootstrap replicates of the AUC on 100,000 cases.

Run: ``.venv/bin/python bench/stats.py [--repeats 7] [--json]``

The two AUC implementations run alternately in the same process on the same data (the order flips every
round so neither always runs on a warm cache); the figure of merit is the median over rounds of
radgate-time / sklearn-time, with a target of at most 3.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import sklearn
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from radgate.stats import bootstrap_auc, delong  # noqa: E402

TARGET_RATIO = 3.0
T = TypeVar("T")


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int8)
    return y, rng.normal(size=n) + 1.0 * y


def timed(fn: Callable[..., T], *args: Any) -> tuple[float, T]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def bench_delong(n: int, repeats: int) -> dict[str, object]:
    y, s = synthetic(n, 0)
    delong(y, s)  # warm-up (imports, page faults)
    roc_auc_score(y, s)
    ours, theirs, ratios = [], [], []
    result = None
    for r in range(repeats):
        if r % 2 == 0:
            t_ours, result = timed(delong, y, s)
            t_sk, auc_sk = timed(roc_auc_score, y, s)
        else:
            t_sk, auc_sk = timed(roc_auc_score, y, s)
            t_ours, result = timed(delong, y, s)
        ours.append(t_ours)
        theirs.append(t_sk)
        ratios.append(t_ours / t_sk)
    assert result is not None
    if abs(result.auc - auc_sk) > 1e-9:
        raise SystemExit(f"AUC mismatch: radgate {result.auc!r} vs sklearn {auc_sk!r}")
    ratio = statistics.median(ratios)
    return {
        "cases": n,
        "repeats": repeats,
        "radgate_delong_median_s": statistics.median(ours),
        "sklearn_roc_auc_median_s": statistics.median(theirs),
        "median_ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
        "auc": result.auc,
        "auc_ci": list(result.ci),
    }


def bench_bootstrap(n: int, replicates: int) -> dict[str, object]:
    y, s = synthetic(n, 1)
    t, res = timed(bootstrap_auc, y, s, replicates, 0.95, 0)
    return {
        "cases": n,
        "replicates": replicates,
        "seconds": t,
        "ms_per_replicate": 1000 * t / replicates,
        "auc": res.estimate,
        "ci": list(res.ci),
        "se": res.se,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--bootstrap-cases", type=int, default=100_000)
    parser.add_argument("--replicates", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    out = {
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "sklearn": sklearn.__version__,
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "delong_vs_sklearn": bench_delong(args.cases, args.repeats),
        "bootstrap_auc": bench_bootstrap(args.bootstrap_cases, args.replicates),
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    d, b = out["delong_vs_sklearn"], out["bootstrap_auc"]
    assert isinstance(d, dict) and isinstance(b, dict)
    print(f"AUC + DeLong CI, {d['cases']:,} cases, {d['repeats']} alternating rounds")
    print(f"  radgate delong        median {d['radgate_delong_median_s'] * 1000:8.1f} ms")
    print(f"  sklearn roc_auc_score median {d['sklearn_roc_auc_median_s'] * 1000:8.1f} ms (AUC only)")
    verdict = "meets" if d["meets_target"] else "MISSES"
    print(f"  median ratio {d['median_ratio']:.2f}x ({verdict} the <= {TARGET_RATIO:g}x target)")
    print(f"  AUC {d['auc']:.4f}, 95% CI {d['auc_ci'][0]:.4f}-{d['auc_ci'][1]:.4f}")
    print(f"Stratified bootstrap of the AUC, {b['cases']:,} cases, {b['replicates']:,} replicates")
    print(f"  {b['seconds']:.2f} s ({b['ms_per_replicate']:.2f} ms per replicate)")
    print(f"  AUC {b['auc']:.4f}, percentile 95% CI {b['ci'][0]:.4f}-{b['ci'][1]:.4f}")


if __name__ == "__main__":
    main()
