"""The docs are part of the interface: README's set-up commands, the CLI reference, the architecture."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_gives_the_two_setup_commands_first() -> None:
    text = (ROOT / "README.md").read_text()
    setup = text.index("## Set-up")
    block = text[setup : text.index("```", text.index("```", setup) + 3)]
    assert re.findall(r"^make (\w+)", block, flags=re.M) == ["demo", "test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, flags=re.M) and re.search(r"^test:", makefile, flags=re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_cli_reference_is_current() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_readme_commands_exist() -> None:
    """Every `radgate X` the README shows is a real command."""
    import typer.main

    import radgate.cli as cli

    cli.register_commands()
    commands = set(typer.main.get_command(cli.app).commands)  # type: ignore[attr-defined]
    used = set(re.findall(r"bin/radgate ([\w-]+)", (ROOT / "README.md").read_text()))
    assert used, "the README shows no radgate command"
    assert used <= commands, f"README mentions unknown commands: {used - commands}"


def test_architecture_names_every_package() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    packages = sorted(p.parent.name for p in (ROOT / "radgate").glob("*/__init__.py"))
    missing = [p for p in packages if f"radgate.{p}" not in text]
    assert missing == [], f"ARCHITECTURE.md does not describe: {missing}"


def test_every_command_takes_data_dir_and_config() -> None:
    import typer.main

    import radgate.cli as cli

    cli.register_commands()

    def leaves(cmd, path):  # type: ignore[no-untyped-def]
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from leaves(sub, [*path, name])
        else:
            yield path, cmd

    missing = []
    for path, cmd in leaves(typer.main.get_command(cli.app), ["radgate"]):
        options = {opt for p in cmd.params for opt in getattr(p, "opts", [])}
        if not {"--data-dir", "--config"} <= options:
            missing.append(" ".join(path))
    assert missing == [], f"commands without --data-dir/--config: {missing}"
