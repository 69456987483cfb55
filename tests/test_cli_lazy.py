"""Command start-up: `radgate --help` and the light commands import no heavy dependency they do not use.

Not timed (bench/startup.py times them against a bare interpreter); this checks *what* is imported, each in
a fresh interpreter, and that the table of lazily imported commands (radgate.cli.lazy) matches the modules.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numpy", "pydicom", "onnxruntime", "highdicom", "matplotlib", "sqlalchemy")

PROBE = """
import json, sys
import radgate.cli
try:
    radgate.cli.app(sys.argv[1:], prog_name="radgate")
except SystemExit as exc:
    code = exc.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(HEAVY)))
print("\\nPROBE " + json.dumps({"code": code, "heavy": heavy}))
"""


def run_cli(args: list[str], tmp_path: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RADGATE_DATA_DIR": str(tmp_path / "data"), "HEAVY": ""}
    env.pop("RADGATE_CONFIG", None)
    code = PROBE.replace("json.loads(HEAVY)", repr(list(HEAVY)))
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    line = [x for x in result.stdout.splitlines() if x.startswith("PROBE ")]
    assert line, result.stdout + result.stderr
    out: dict[str, object] = json.loads(line[-1].removeprefix("PROBE "))
    return out


def test_help_imports_no_heavy_dependency(tmp_path: Path) -> None:
    out = run_cli(["--help"], tmp_path)
    assert out == {"code": 0, "heavy": []}


def test_importing_the_app_imports_no_heavy_dependency(tmp_path: Path) -> None:
    code = f"import sys, radgate.cli; print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["series"],
        ["series", "--json"],
        ["models", "list"],
        ["models", "list", "--json"],
        ["expect", "--help"],
    ],
)
def test_light_commands_import_no_heavy_dependency(tmp_path: Path, args: list[str]) -> None:
    """They read a SQLite data directory with sqlite3 (radgate.db.light): not even SQLAlchemy.

    `radgate init` creates the schema (Alembic loads every table module) and the first `models list`
    registers the bundled model (through the registry); the commands after them import none of that.
    """
    assert run_cli(["init"], tmp_path)["code"] in (0, None)
    assert run_cli(["models", "list"], tmp_path)["code"] in (0, None)
    out = run_cli(args, tmp_path)
    assert out == {"code": out["code"], "heavy": []} and out["code"] in (0, None), out


@pytest.mark.parametrize(
    "args", [["series"], ["series", "--json"], ["models", "list"], ["models", "list", "--json"], ["--help"]]
)
def test_light_commands_and_help_import_no_pydantic(tmp_path: Path, args: list[str]) -> None:
    """`radgate series` and `models list` read their settings without the schema
    (radgate.config_sources.light_settings), and Typer < 0.29 parses their options without pydantic
    TypeAdapters; `models list` shows what the registry's rows hold (finding names, intended use), the
    bundled package's name and version read with tomllib: pydantic is not imported at all.

    The first `models list` registers the bundled model (through the registry, which checks its manifest)."""
    assert run_cli(["init"], tmp_path)["code"] in (0, None)
    assert run_cli(["models", "list"], tmp_path)["code"] in (0, None)
    code = PROBE.replace("json.loads(HEAVY)", repr(["pydantic", "pydantic_core"]))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RADGATE_DATA_DIR": str(tmp_path / "data")}
    env.pop("RADGATE_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    line = [x for x in result.stdout.splitlines() if x.startswith("PROBE ")]
    assert line, result.stdout + result.stderr
    out = json.loads(line[-1].removeprefix("PROBE "))
    assert out["heavy"] == [] and out["code"] in (0, None), out


def test_rejections_load_the_database_only(tmp_path: Path) -> None:
    """Through SQLAlchemy, but neither pydicom, numpy, onnxruntime, highdicom nor matplotlib."""
    assert run_cli(["init"], tmp_path)["code"] in (0, None)
    out = run_cli(["rejections", "--json"], tmp_path)
    assert out["code"] in (0, None), out
    assert set(out["heavy"]) <= {"sqlalchemy"}, out  # type: ignore[arg-type]


def test_lazy_help_matches_the_commands() -> None:
    """The table of radgate.cli.lazy lists every command of the modules, in order, with their help line."""
    import typer.main

    import radgate.cli as cli
    from radgate.cli.lazy import COMMANDS, listed_order

    cli.register_commands()
    group = typer.main.get_command(cli.app)
    real = {name: cmd for name, cmd in group.commands.items()}  # type: ignore[attr-defined]
    assert set(real) == set(COMMANDS), "update COMMANDS in radgate/cli/lazy.py"
    # The order of registration, in a fresh interpreter (tests here may have imported a module earlier).
    code = "import radgate.cli as c, typer.main; c.register_commands(); print(list(typer.main.get_command(c.app).commands))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert fresh.stdout.strip() == repr(listed_order()), "keep COMMANDS in radgate/cli/lazy.py in module order"
    for name, entry in COMMANDS.items():
        assert entry.help == real[name].get_short_help_str(limit=10_000), name
        assert entry.group == hasattr(real[name], "commands"), name


def test_lazy_help_output_equals_the_eager_one(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import radgate.cli as cli

    cli.register_commands()
    eager = CliRunner().invoke(cli.app, ["--help"], prog_name="radgate", env={"COLUMNS": "80"})
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    lazy = subprocess.run(
        [sys.executable, "-c", "import radgate.cli; radgate.cli.app(prog_name='radgate')", "--help"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert lazy.returncode == 0, lazy.stderr
    assert " ".join(lazy.stdout.split()) == " ".join(eager.output.split())


def test_an_unknown_command_suggests_lazy_ones(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", "import radgate.cli; radgate.cli.main()", "seris"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 2
    assert "No such command 'seris'" in result.stderr and "'series'" in result.stderr


def test_help_does_not_load_markdown_or_pygments(tmp_path: Path) -> None:
    """typer.rich_utils imports rich.markdown and rich.traceback for features radgate does not use: help
    gets stand-ins, and the real modules still import (and work) afterwards."""
    code = (
        "import sys, radgate.cli\n"
        "try:\n    radgate.cli.app(['--help'], prog_name='radgate')\nexcept SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'markdown_it', 'pygments'}))\n"
        "import rich.markdown, typer.rich_utils\n"
        "assert type(typer.rich_utils.Markdown('x')) is rich.markdown.Markdown\n"
        "assert typer.rich_utils.Traceback.from_exception.__self__.__module__ == 'rich.traceback'\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.stdout.splitlines()[-2:] == ["[]", "ok"], result.stdout + result.stderr
