"""Fuzz benchmark (issue 17): mutated DICOM files sent by C-STORE and STOW-RS to ``radgate serve``.

    .venv/bin/python bench/fuzz.py [--cases 2400] [--seed 1] [--workers 3]

A deterministic mutational fuzzer (tests/fuzz/mutators.py) over pydicom's test files and one synthetic
image per vendor profile: bit flips, truncations, corrupted length fields, wrong VRs, deeply nested
undefined-length sequences, declared lengths of gigabytes, broken deflate streams and deflate bombs (64 and
700 MiB inflated), encapsulated pixel data with bad fragments, lying Rows/Columns/Bits/Frames, huge private
tags, invalid character sets and broken file meta. radgate runs as a separate process with its defaults
(fsync off for speed); the harness (tests/fuzz/harness.py) accounts for every case and prints a table:
cases per kind, crashes, hangs, lost, duplicated, and the server's peak memory (VmHWM). Exit status 1 when
any of crashes, hangs, lost, duplicated, unchecked is non-zero or the valid series afterwards did not flow.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzz.harness import FuzzServer, run_cases  # noqa: E402
from tests.fuzz.mutators import KINDS, corpus, iter_cases  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=200 * len(KINDS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the server's data directory")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    start = time.monotonic()
    seeds = corpus()
    print(f"corpus: {len(seeds)} files ({', '.join(s.name for s in seeds)})")
    server = FuzzServer()
    server.start()
    try:
        report = run_cases(
            server, iter_cases(args.seed, args.cases, seeds), workers=args.workers, progress=True
        )
    finally:
        server.stop()
    print(
        f"\n{args.cases} cases, seed {args.seed}, {args.workers} senders, {time.monotonic() - start:.0f} s\n"
    )
    print(report.table())
    if args.keep:
        print(f"server data and log: {server.data_dir}")
    else:
        shutil.rmtree(server.data_dir, ignore_errors=True)
    return 0 if report.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
