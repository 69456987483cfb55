"""Command start-up benchmark: `radgate --help` and the light commands against bare peers, in the same rounds.

    .venv/bin/python bench/startup.py [--repeats 11] [--studies 50] [--baseline /path/to/other/checkout]

Each command runs as a user runs it (the ``.venv/bin/radgate`` console script, a fresh process each time),
in alternation with its peers; the figure is the median wall time over the repeats, and the ratio is against
a peer measured in the same rounds:

- ``python -c pass``: the interpreter alone (what no Python CLI can beat);
- ``typer-app --help``: a bare Typer + Rich app (one root callback, one command), the floor of ``--help``;
- ``typer-app series``: the same bare app running ``series`` with radgate's options (``--data-dir``,
  ``--config``, ``--limit``, ``--json``), reading the same rows with ``sqlite3`` and printing them in a Rich
  table: the floor of a light command of any Typer CLI;
- ``sqlite3 DB 'SELECT ...'``: the SQLite shell reading the same rows (no Python at all).

The data directory is made as the README's walkthrough makes one (``radgate init``, ``radgate synth``,
``radgate import``); one ``radgate models list`` registers the bundled model before the rounds. Target
(issue 15): <= 0.3 s each. With ``--baseline``, another checkout's commands run in the same rounds (``@base``).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RADGATE = str(BIN / "radgate")
TARGET_S = 0.3

SERIES_SQL = (
    'SELECT "SeriesInstanceUID", "Modality", num_instances, expected_instances, status, note '
    "FROM series ORDER BY last_received DESC LIMIT 50"
)
MODELS_SQL = "SELECT name, version, task, sha256, registered_at, registered_by FROM model_versions"

#: The bare Typer + Rich app: radgate's ``series`` without radgate (no settings, no schema check).
PEER_APP = f'''
import json, sqlite3
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="A bare Typer app.", no_args_is_help=True, add_completion=False)


@app.callback()
def root() -> None:
    """A bare Typer app."""


@app.command()
def series(
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Data directory.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Config file.")] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List series."""
    conn = sqlite3.connect(str(data_dir / "radgate.sqlite"))
    cursor = conn.execute({SERIES_SQL!r})
    columns = [d[0] for d in cursor.description]
    rows = [dict(zip(columns, r)) for r in cursor]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table(title="Series")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    Console().print(table)


app()
'''


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr[-500:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def make_data_dir(work: Path, env: dict[str, str], studies: int) -> Path:
    data_dir = work / "data"
    for argv in (
        [RADGATE, "init", str(data_dir)],
        [RADGATE, "synth", "--out", str(work / "site"), "--studies", str(studies), "--seed", "7"],
        [RADGATE, "import", str(work / "site" / "dicom"), "--data-dir", str(data_dir)],
        [RADGATE, "models", "list", "--data-dir", str(data_dir)],  # registers the bundled model
    ):
        subprocess.run(argv, env=env, check=True, capture_output=True)
    return data_dir


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--studies", type=int, default=50, help="synthetic studies imported (series listed)")
    parser.add_argument("--radgate-path", type=Path, default=ROOT, help="checkout whose radgate package runs")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (e.g. before a change): its commands run in the same rounds",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        env = dict(os.environ, PYTHONPATH=str(args.radgate_path.resolve()), COLUMNS="120")
        for name in [n for n in env if n.startswith("RADGATE_")]:
            del env[name]
        data_dir = make_data_dir(work, env, args.studies)
        peer_app = work / "typer_app.py"
        peer_app.write_text(PEER_APP, encoding="utf-8")
        db = str(data_dir / "radgate.sqlite")
        dd = ["--data-dir", str(data_dir)]
        py = sys.executable
        peers = {
            "python -c pass": [py, "-c", "pass"],
            "typer-app --help": [py, str(peer_app), "--help"],
            "typer-app series": [py, str(peer_app), "series", *dd],
            "sqlite3 series": ["sqlite3", db, SERIES_SQL],
            "sqlite3 models": ["sqlite3", db, MODELS_SQL],
        }
        commands = {
            "radgate --help": [RADGATE, "--help"],
            "radgate models list": [RADGATE, "models", "list", *dd],
            "radgate series": [RADGATE, "series", *dd],
        }
        #: Each command's peers: the same work done by a bare Typer app, and by no Python at all.
        floors = {
            "radgate --help": ("typer-app --help", None),
            "radgate models list": ("typer-app series", "sqlite3 models"),
            "radgate series": ("typer-app series", "sqlite3 series"),
        }
        if shutil.which("sqlite3") is None:
            del peers["sqlite3 series"], peers["sqlite3 models"]
        envs = {name: env for name in [*peers, *commands]}
        if args.baseline:
            base_env = dict(env, PYTHONPATH=str(args.baseline.resolve()))
            for name, argv in list(commands.items()):
                commands[f"{name} @base"] = argv
                envs[f"{name} @base"] = base_env
                floors[f"{name} @base"] = floors[name]
        runs: dict[str, list[float]] = {name: [] for name in [*peers, *commands]}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, argv in [*peers.items(), *commands.items()]:
                wall, used = timed(argv, envs[name])
                runs[name].append(wall)
                cpu[name].append(used)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    median = {name: statistics.median(times) for name, times in runs.items()}
    cpu_median = {name: statistics.median(times) for name, times in cpu.items()}
    load = os.getloadavg()
    print(
        f"{args.repeats} alternating rounds, {args.studies} studies; load average {load[0]:.2f} {load[1]:.2f}"
    )
    print(
        "Ratios of wall-time medians; CPU s (user + system) is steadier than wall time on a loaded machine."
    )
    print(
        f"{'process':30} {'median s':>9} {'cpu s':>6} {'x pass':>7} {'x typer-app':>12} {'(cpu)':>6} {'x sqlite3':>10}"
    )
    for name in peers:
        print(
            f"{name:30} {median[name]:9.3f} {cpu_median[name]:6.3f} {median[name] / median['python -c pass']:7.1f}"
        )
    for name in commands:
        app_floor, shell_floor = floors[name]
        shell = f"{median[name] / median[shell_floor]:10.1f}" if shell_floor in median else f"{'':10}"
        verdict = "ok" if median[name] <= TARGET_S else f"over the {TARGET_S} s target"
        print(
            f"{name:30} {median[name]:9.3f} {cpu_median[name]:6.3f} {median[name] / median['python -c pass']:7.1f} "
            f"{median[name] / median[app_floor]:12.2f} {cpu_median[name] / cpu_median[app_floor]:6.2f} "
            f"{shell}  {verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
