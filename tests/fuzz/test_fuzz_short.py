"""The short fuzz run of ``make test`` (issue 17): a few hundred mutated files by C-STORE and STOW-RS.

``bench/fuzz.py`` runs the same fuzzer with 2,000+ cases and bigger deflate bombs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz import mutators
from tests.fuzz.harness import FuzzServer, run_cases


@pytest.fixture
def server(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FuzzServer]:
    # Bombs of 64 MiB against a 32 MiB inflate limit: the refusal path, at a test's cost.
    monkeypatch.setattr(mutators, "BOMB_SIZES", (64 * 1024**2,))
    srv = FuzzServer(tmp_path / "data", env={"RADGATE_INGEST_MAX_INFLATED_BYTES": str(32 * 1024**2)})
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_short_fuzz_run_has_no_crash_hang_loss_or_duplicate(server: FuzzServer) -> None:
    n = 20 * len(mutators.KINDS)
    report = run_cases(server, mutators.iter_cases(17, n), workers=3)
    print(report.table())
    assert report.cases == n
    assert set(report.kinds) == set(mutators.KINDS)
    assert all(k.dimse > 0 for name, k in report.kinds.items() if name != "meta")
    assert all(k.stow > 0 for k in report.kinds.values())
    assert report.crashes == 0, report.table()
    assert report.hangs == 0, report.table()
    assert report.lost == 0 and report.duplicated == 0, report.table()
    assert report.unchecked == 0, report.table()  # the pixel checker got through every stored case
    assert report.valid_series_flowed, report.table()
    assert report.peak_rss_bytes < 1536 * 1024**2, report.table()
    # Every case was answered with a status or a rejection reason (a 0xC000-class status or a stored one).
    unsendable = sum(
        n for k in report.kinds.values() for s, n in k.statuses.items() if s.startswith("unsend")
    )
    assert unsendable == 0, report.table()
    log = (server.log_path).read_text(errors="replace")
    assert "Traceback" not in log, log[log.index("Traceback") - 500 : log.index("Traceback") + 2000]


def test_cases_are_deterministic() -> None:
    first = [mutators.make_case(5, i).data for i in range(0, 24, 5)]
    again = [mutators.make_case(5, i).data for i in range(0, 24, 5)]
    assert first == again
    assert mutators.make_case(5, 1).data != mutators.make_case(6, 1).data
