"""`make demo` says what it resets (issue 16: it wiped its data directory silently)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import radgate.cli as cli
from radgate.cli.demo import reset_notice
from radgate.demo import DEMO_MARKER

ROOT = Path(__file__).resolve().parents[1]


def test_the_notice_names_what_is_removed(tmp_path: Path) -> None:
    assert reset_notice(tmp_path / "new") == f"Creating the demo's data directory {tmp_path / 'new'}."
    demo = tmp_path / "demo"
    demo.mkdir()
    for name in ("radgate.sqlite", "instances", "go-live-report", DEMO_MARKER):
        (demo / name).touch()
    notice = reset_notice(demo)
    assert notice.startswith(f"Resetting {demo}: the previous demo run there is removed")
    assert "go-live-report, instances, radgate.sqlite" in notice and "--data-dir" in notice


def test_a_directory_the_demo_did_not_make_is_refused_and_kept(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "precious.txt").write_text("keep me")
    result = CliRunner().invoke(cli.app, ["demo", "--data-dir", str(mine)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "was not made by the demo: the demo will refuse to touch it" in result.output
    assert "is not a radgate demo directory" in result.output and "Traceback" not in result.output
    assert (mine / "precious.txt").read_text() == "keep me"


def test_make_demo_says_it_rebuilds_its_directory() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\ndemo:") : makefile.index("\n\n", makefile.index("\ndemo:"))]
    assert "rebuilt from scratch" in recipe and "radgate-data/demo" in recipe
