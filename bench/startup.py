"""Command start-up benchmark: `radgate --help` and light commands against bare interpreters.

    .venv/bin/python bench/startup.py [--repeats 7]

Each command runs as a user runs it (the ``.venv/bin/radgate`` console script, a fresh process each time), in
alternation with its peers, and the figure is the median wall time over the repeats. Peers, measured in the
same rounds:

- ``python -c pass``: the interpreter alone (what no Python CLI can beat);
- ``python -c "import typer.rich_utils"``: Typer + Rich, the floor of any command of this CLI (help output);
- ``python -c "import typer.rich_utils, sqlalchemy.orm"``: the floor of a command that reads the database.

The light commands run against a data directory whose database already exists (the first command creates the
schema; that one-off migration is not what a user waits for every time). Target (issue 15): <= 0.3 s each.
"""

from __future__ import annotations

import argparse
import os
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


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr[-500:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--radgate-path", type=Path, default=ROOT, help="checkout whose radgate package runs")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout (e.g. before a change): its commands run in the same rounds"
    )
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    env = dict(os.environ, PYTHONPATH=str(args.radgate_path.resolve()), RADGATE_DATA_DIR=str(data_dir))
    env.pop("RADGATE_CONFIG", None)
    subprocess.run([RADGATE, "models", "list"], env=env, check=True, capture_output=True)  # create the schema

    py = sys.executable
    peers = {
        "python -c pass": [py, "-c", "pass"],
        "import typer+rich": [py, "-c", "import typer.rich_utils"],
        "import typer+rich+sqlalchemy.orm": [py, "-c", "import typer.rich_utils, sqlalchemy.orm"],
    }
    commands = {
        "radgate --help": [RADGATE, "--help"],
        "radgate models list": [RADGATE, "models", "list"],
        "radgate series": [RADGATE, "series"],
    }
    envs = {name: env for name in [*peers, *commands]}
    if args.baseline:
        base_env = dict(env, PYTHONPATH=str(args.baseline.resolve()))
        for name, argv in list(commands.items()):
            commands[f"{name} @base"] = argv
            envs[f"{name} @base"] = base_env
    runs: dict[str, list[float]] = {name: [] for name in [*peers, *commands]}
    for _ in range(args.repeats):
        for name, argv in [*peers.items(), *commands.items()]:
            runs[name].append(timed(argv, envs[name]))

    median = {name: statistics.median(times) for name, times in runs.items()}
    print(f"{'process':38} {'median s':>9} {'x pass':>7} {'x floor':>8}")
    for name in peers:
        print(f"{name:38} {median[name]:9.3f} {median[name] / median['python -c pass']:7.1f}")
    for name in commands:
        floor = "import typer+rich" if "--help" in name else "import typer+rich+sqlalchemy.orm"
        verdict = "ok" if median[name] <= TARGET_S else f"over the {TARGET_S} s target"
        print(
            f"{name:38} {median[name]:9.3f} {median[name] / median['python -c pass']:7.1f} "
            f"{median[name] / median[floor]:8.2f}  {verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
