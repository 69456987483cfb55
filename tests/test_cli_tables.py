"""Help and tables a new user reads: identifiers whole at 80 columns, --json on listings, metavars, --version.

Issue 16 items 7 and 8: tables cut UIDs and model names at 80 columns; no `--version`; help showed
`<bool>`, `<list[str]>` and `{csv_file}`; defaults were not shown.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from rich.table import Table
from typer.testing import CliRunner

import radgate.cli as cli
from radgate import __version__
from radgate.cli.app import RadgateConsole
from tests.helpers.datadir import make_data_dir

ROOT = Path(__file__).resolve().parents[1]
UID = "1.2.826.0.1.3680043.8.498.12345678901234567890123456789012345678901234"  # 64 characters


def leaves() -> Iterator[tuple[list[str], Any]]:
    cli.register_commands()

    def walk(cmd: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
        subs = getattr(cmd, "commands", None)
        if subs:
            yield path, cmd
            for name, sub in subs.items():
                yield from walk(sub, [*path, name])
        else:
            yield path, cmd

    yield from walk(typer.main.get_command(cli.app), [])


def test_identifiers_are_never_cut_and_other_columns_wrap() -> None:
    out = io.StringIO()
    console = RadgateConsole(file=out, width=80, highlight=False, color_system=None)
    table = Table(title="Series")
    for column in ("SeriesInstanceUID", "Modality", "status", "note"):
        table.add_column(column)
    table.add_row(UID, "DX", "incomplete", "waiting for more instances: " + "expected 3, have 2 " * 4)
    console.print(table)
    text = out.getvalue()
    assert UID in text, text  # whole, on one line
    assert "…" not in text
    assert "waiting" in text and text.count("expected") == 4  # the note wrapped rather than cut


def test_a_wide_identifier_widens_the_table_beyond_the_terminal() -> None:
    out = io.StringIO()
    console = RadgateConsole(file=out, width=40, highlight=False, color_system=None)
    table = Table()
    table.add_column("SOPInstanceUID")
    table.add_column("reason")
    table.add_row(UID, "not a DICOM file")
    console.print(table)
    assert UID in out.getvalue()


def test_deployments_list_shows_long_names_whole_at_80_columns(tmp_path: Path) -> None:
    name = "north-hospital-pneumothorax-triage-champion-2026-q4"
    runner = CliRunner()
    env = {"COLUMNS": "80", "RADGATE_CONFIG": None}
    data = ["--data-dir", str(make_data_dir(tmp_path / "d"))]
    added = runner.invoke(
        cli.app, ["deployments", "add", name, "--model", "demo-pneumothorax", "--version", "1.0.0", *data], env=env
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli.app, ["deployments", "list", *data], env=env)
    assert name in listed.stdout and "demo-pneumothorax 1.0.0" in listed.stdout, listed.stdout


LISTINGS = {"list", "series", "rejections", "profiles", "scenarios", "summary", "show", "changes", "queue"}


def test_every_listing_command_takes_json() -> None:
    missing = []
    for path, cmd in leaves():
        if getattr(cmd, "commands", None) or not path or path[-1] not in LISTINGS:
            continue
        if path == ["models", "show"]:
            continue  # the manifest as TOML (radgate/cli/models.py, not this branch's)
        if "--json" not in {o for p in cmd.params for o in getattr(p, "opts", [])}:
            missing.append(" ".join(path))
    assert missing == [], f"listing commands without --json: {missing}"


def test_help_shows_command_line_metavars_and_defaults() -> None:
    runner = CliRunner()
    bad = []
    for path, _ in leaves():
        result = runner.invoke(cli.app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        for python_ism in ("<bool>", "<list[", "<str>", "<int>", "<float>", "<path>", "{"):
            if python_ism in result.output.split("Usage:")[1].split("\n")[0] or (
                python_ism != "{" and python_ism in result.output
            ):
                bad.append((" ".join(path), python_ism))
    assert bad == []
    validate = runner.invoke(cli.app, ["validate", "--help"], env={"COLUMNS": "200"}).output
    assert "CSV_FILE" in validate and "{csv_file}" not in validate
    demo = runner.invoke(cli.app, ["demo", "--help"], env={"COLUMNS": "200"}).output
    assert "[default: 90]" in demo and "[default: 2026]" in demo


def test_docs_cli_lists_the_options_of_a_group_callback() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    synth = text[text.index("## `radgate synth`") : text.index("### `radgate synth profiles`")]
    for option in ("--out", "--studies", "--seed", "--profile", "--scenario", "--prevalence", "--overwrite"):
        assert f"`{option}`" in synth, option


def test_version_is_printed_without_heavy_imports(tmp_path: Path) -> None:
    code = (
        "import sys, radgate.cli\n"
        "try:\n    radgate.cli.app(['--version'], prog_name='radgate')\n"
        "except SystemExit as exc:\n    code = exc.code\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'numpy', 'pydicom', 'onnxruntime', 'sqlalchemy', 'pydantic', 'highdicom'})\n"
        "print(json.dumps({'code': code, 'heavy': heavy}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, env=env, timeout=120
    )
    first, last = result.stdout.splitlines()[0], result.stdout.splitlines()[-1]
    assert first == f"radgate {__version__}"
    assert json.loads(last) == {"code": 0, "heavy": []}


@pytest.mark.parametrize("args", [["synth", "scenarios", "--json"], ["predictions", "summary", "--json"]])
def test_new_json_listings_print_json(tmp_path: Path, args: list[str]) -> None:
    result = CliRunner().invoke(cli.app, [*args, "--data-dir", str(make_data_dir(tmp_path / "d"))], env={"RADGATE_CONFIG": None})
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)


def test_a_missing_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli.app, ["truth", "import", str(tmp_path / "nope.csv"), "--data-dir", str(make_data_dir(tmp_path / "d"))],
        env={"COLUMNS": "200", "RADGATE_CONFIG": None},
    )
    assert result.exit_code in (1, 2) and "Traceback" not in result.output
    assert "nope.csv" in result.output and len([x for x in result.output.splitlines() if x.strip()]) <= 3


def test_an_identifier_wider_than_the_terminal_leaves_the_other_columns_readable() -> None:
    """Regression: a destination path wider than the terminal squeezed every other column to nothing
    (``outbox list`` showed no id, kind or status), because Rich caps ``print(width=)`` at the console's."""
    from rich.table import Table

    from radgate.cli.app import RadgateConsole

    console = RadgateConsole(width=80, force_terminal=False, record=True)
    table = Table("id", "kind", "destination", "status")
    table.add_column("SOPInstanceUID", overflow="fold")
    destination = "folder:/" + "x" * 90
    uid = "2.25.182811328806474242933152248469511182118"
    table.add_row("17", "SR", destination, "sent", uid)
    console.print(table)
    text = console.export_text()
    row = next(line for line in text.splitlines() if destination in line)
    assert "│ 17 " in row and "│ SR " in row and "│ sent " in row and uid in row, text


def test_models_show_and_db_status_print_json(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path / "d")
    runner = CliRunner()
    result = runner.invoke(cli.app, ["db", "status", "--json", "--data-dir", str(data)], env={"RADGATE_CONFIG": None})
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["state"] == "at_heads" and status["current"] == status["heads"]
    listed = runner.invoke(cli.app, ["models", "list", "--json", "--data-dir", str(data)])
    first = json.loads(listed.stdout)[0]
    result = runner.invoke(cli.app, ["models", "show", first["name"], first["version"], "--json", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["name"], shown["version"]) == (first["name"], first["version"])
    assert shown["manifest"]["model"]["name"] == first["name"] and shown["synthetic"] is True


def test_fit_identifiers_without_measuring_answers_as_the_measurement() -> None:
    """fit_identifiers skips Rich's measurement when the text cells' own widths say the table fits: on random
    tables (markup, emoji codes, wide characters, empty cells, Text cells, borders, padding, narrow and wide
    terminals) its answer is the one Rich's measurement gives."""
    import random

    from rich import box
    from rich.text import Text

    from radgate.cli.app import fit_identifiers

    rng = random.Random(15)
    words = ["a", "DX", "receiving", "1.2.840.10008", UID, "[bold]marked[/bold]", "幅広い", ":warning: x", "08:11", ""]
    answers = {"fits": 0, "wider": 0}
    for _ in range(400):
        width = rng.randint(20, 200)
        console = RadgateConsole(file=io.StringIO(), width=width, highlight=False, color_system=None)
        table = Table(
            title="T",
            box=rng.choice([box.HEAVY_HEAD, box.SIMPLE, None]),
            show_edge=rng.random() < 0.7,
            pad_edge=rng.random() < 0.7,
            padding=(0, rng.randint(0, 2)),
        )
        for c in range(rng.randint(1, 7)):
            table.add_column(
                rng.choice(["SeriesInstanceUID", "Name", "note", "status", f"column {c}"]),
                max_width=rng.choice([None, None, None, 8, 30]),
            )
        for _ in range(rng.randint(0, 5)):
            cells = [" ".join(rng.choices(words, k=rng.randint(0, 5))) for _ in table.columns]
            table.add_row(*(Text(c) if rng.random() < 0.2 else c for c in cells))
        answer = fit_identifiers(table, console)
        measured = int(table.__rich_measure__(console, console.options.update_width(1_000_000)).minimum)
        assert answer == (measured if measured > width else None), (width, measured, answer)
        answers["wider" if answer else "fits"] += 1
    assert min(answers.values()) > 50, answers  # both answers were given
