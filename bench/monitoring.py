"""Benchmark radgate.monitoring on simulated sites (radgate.monitoring.simulate), printed as a table.

1. Detection delay: on the demo site (12 months, a new Agfa DR room from 2025-08; labels 30 days after the
   study), days from the new scanner's first study to the first ``new_scanner`` finding, the first
   ``input_drift`` finding and the first performance finding (``auc_drop_ci``, ``cusum_*``), over several
   seeds. A finding's day is when its data existed: the study itself (``new_scanner``), the period's last day
   (period rules), the day the last label arrived (performance rules): i.e. monitoring run daily.
2. False alarms per deployment-year on a 24-month site without any change (first 3 months the reference),
   for each rule: every firing counted (as if each alert were resolved at once), over several seeds.
   Target <= 1 for the sound rules; the heuristic ``auc_drop`` and ``cbpe`` beside them.
3. ``radgate monitor run`` on N predictions (default 1,000,000), the command a user runs, against a peer
   process measured in the same run: sqlite3 + numpy + scikit-learn's roc_auc_score computing the monthly
   AUC from the same database (the least a monitoring job does). Alternated, median ratio.

Run: ``.venv/bin/python bench/monitoring.py [--seeds 5] [--predictions 1000000] [--repeats 3] [--json]
[--timing-only]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from radgate.config import MonitoringSettings  # noqa: E402
from radgate.db import open_database  # noqa: E402
from radgate.monitoring.rules import BUILTIN_RULES  # noqa: E402
from radgate.monitoring.service import analyse  # noqa: E402
from radgate.monitoring.simulate import simulate_bulk, simulate_site  # noqa: E402
from radgate.synth.scenario import builtin_scenario, parse_scenario  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PERFORMANCE = ("auc_drop_ci", "cusum_sensitivity", "cusum_specificity")

PEER = r"""
import sqlite3, sys, numpy as np
from sklearn.metrics import roc_auc_score
con = sqlite3.connect(sys.argv[1])
rows = con.execute(
    "SELECT substr(s.StudyDate, 1, 6), p.score, g.label FROM predictions p "
    "JOIN studies s ON s.StudyInstanceUID = p.StudyInstanceUID "
    "JOIN ground_truth g ON g.StudyInstanceUID = p.StudyInstanceUID").fetchall()
month = np.array([r[0] for r in rows]); score = np.array([r[1] for r in rows]); label = np.array([r[2] for r in rows])
out = {m: roc_auc_score(label[month == m], score[month == m]) for m in np.unique(month)}
print(len(rows), len(out))
"""


def steady(months: int, per_month: int) -> Any:
    return parse_scenario(
        {
            "scenario": {
                "name": "steady-site",
                "start": dt.date(2024, 1, 1),
                "months": months,
                "studies_per_month": per_month,
                "prevalence": 0.15,
            },
            "vendors": [{"from_month": 1, "mix": {"ge-dx": 0.6, "fuji-cr": 0.1, "carestream-portable": 0.3}}],
        }
    )


def detection(seeds: int, work: Path) -> dict[str, Any]:
    delays: dict[str, list[int | None]] = defaultdict(list)
    for seed in range(seeds):
        db = open_database(f"sqlite:///{work / f'demo-{seed}.sqlite'}")
        sim = simulate_site(db, builtin_scenario("demo-site"), seed=seed)
        first = sim.first_study_by_profile["agfa-dx"]
        findings = analyse(db, MonitoringSettings(), dt.date(2026, 3, 31)).deployments[0].findings
        for name, rules in (
            ("new_scanner", ("new_scanner",)),
            ("input_drift", ("input_drift",)),
            ("performance", PERFORMANCE),
            ("auc_drop (heuristic)", ("auc_drop",)),
        ):
            days = [
                (f.detected_on - first).days for f in findings if f.rule in rules and f.detected_on >= first
            ]
            delays[name].append(min(days) if days else None)
        db.dispose()
    return delays


def false_alarms(seeds: int, months: int, per_month: int, work: Path) -> dict[str, Any]:
    counts: dict[str, int] = defaultdict(int)
    years = 0.0
    for seed in range(seeds):
        db = open_database(f"sqlite:///{work / f'steady-{seed}.sqlite'}")
        simulate_site(db, steady(months, per_month), seed=100 + seed)
        until = dt.date(2024 + months // 12, 1, 1) + dt.timedelta(days=59)  # labels of the last month in
        summary = analyse(db, MonitoringSettings(), until)
        years += (months - MonitoringSettings().reference_periods) / 12
        for f in summary.deployments[0].findings:
            counts[f.rule] += 1
        db.dispose()
    return {rule: counts.get(rule, 0) / years for rule in BUILTIN_RULES} | {"_years": years}


def run_time(n: int, repeats: int, work: Path) -> dict[str, Any]:
    data_dir = work / f"bulk-{n}"
    db = open_database(f"sqlite:///{data_dir / 'radgate.sqlite'}")
    t0 = time.perf_counter()
    simulate_bulk(db, n)
    build = time.perf_counter() - t0
    db.dispose()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    radgate_cmd = [
        sys.executable,
        "-m",
        "radgate",
        "monitor",
        "run",
        "--until",
        "2026-02-28",
        "--json",
        "--data-dir",
        str(data_dir),
    ]
    peer_cmd = [sys.executable, "-c", PEER, str(data_dir / "radgate.sqlite")]
    ours, peers = [], []
    for i in range(repeats):
        for which in (0, 1) if i % 2 == 0 else (1, 0):
            cmd = radgate_cmd if which == 0 else peer_cmd
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            (ours if which == 0 else peers).append(time.perf_counter() - t0)
    ratios = [a / b for a, b in zip(ours, peers, strict=True)]
    return {
        "predictions": n,
        "build_s": build,
        "radgate_s": statistics.median(ours),
        "peer_s": statistics.median(peers),
        "ratio": statistics.median(ratios),
        "repeats": repeats,
    }


def print_quality(seeds: int, delays: dict[str, Any], alarms: dict[str, Any]) -> None:
    print(f"Detection delay on demo-site (new Agfa room from 2025-08), {seeds} seeds, labels 30 days late")
    print(f"{'signal':24s} {'median days':>12s}  per seed")
    for name, values in delays.items():
        known = [v for v in values if v is not None]
        median = f"{statistics.median(known):.0f}" if known else "never"
        print(f"{name:24s} {median:>12s}  {values}")
    print(f"\nFalse alarms per deployment-year, 24-month site without change ({alarms['_years']:.1f} years)")
    print(f"{'rule':20s} {'kind':10s} {'per year':>9s}  target")
    for name, cls in BUILTIN_RULES.items():
        kind = "sound" if cls.sound else "heuristic"
        print(f"{name:20s} {kind:10s} {alarms[name]:9.2f}  {'<= 1' if cls.sound else '(shown beside)'}")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--timing-only", action="store_true", help="Only the `monitor run` timing (part 3).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="radgate-bench-monitoring-") as tmp:
        work = Path(tmp)
        delays: dict[str, Any] = {}
        alarms: dict[str, Any] = {}
        if not args.timing_only:
            delays = detection(args.seeds, work)
            alarms = false_alarms(args.seeds, 24, 300, work)
            if not args.json:
                print_quality(args.seeds, delays, alarms)
        timing = run_time(args.predictions, args.repeats, work)
    if args.json:
        result = {
            "detection_delay_days": delays,
            "false_alarms_per_deployment_year": alarms,
            "monitor_run": timing,
        }
        print(json.dumps(result, indent=1))
        return
    t = timing
    print(
        f"\n`radgate monitor run` on {t['predictions']:,} predictions: {t['radgate_s']:.1f} s; peer (sqlite3 + "
        f"sklearn monthly AUC only) {t['peer_s']:.1f} s; median ratio {t['ratio']:.1f} over {t['repeats']} "
        f"rounds (database built in {t['build_s']:.0f} s)"
    )


if __name__ == "__main__":
    main()
