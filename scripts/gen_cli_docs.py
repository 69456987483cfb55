"""Write docs/cli.md from the Typer app: every command, its help and its options.

    .venv/bin/python scripts/gen_cli_docs.py        # rewrite docs/cli.md
    .venv/bin/python scripts/gen_cli_docs.py --check  # exit 1 when docs/cli.md is stale (used by the tests)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer.main

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "cli.md"


def load_app() -> Any:
    import radgate.cli as cli

    cli.register_commands()
    return typer.main.get_command(cli.app)


def walk(cmd: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    out = [(path, cmd)]
    commands = getattr(cmd, "commands", None)
    if commands:
        for name in sorted(commands):
            out += walk(commands[name], [*path, name])
    return out


def render() -> str:
    root = load_app()
    lines = [
        "# Command line",
        "",
        "Generated from the code by `scripts/gen_cli_docs.py`; `tests/test_docs.py` fails when it is stale.",
        "Every command takes `--data-dir DIR` and `--config FILE` (see [configuration](configuration.md)).",
        "",
    ]
    for path, cmd in walk(root, ["radgate"])[1:]:
        if getattr(cmd, "commands", None):
            lines += [f"## `{' '.join(path)}`", "", (cmd.help or "").strip(), ""]
            continue
        lines += [f"### `{' '.join(path)}`", "", (cmd.help or "").strip().split("\n\n")[0], ""]
        params = [p for p in cmd.params if p.name not in ("help",)]
        if params:
            lines += ["| argument / option | help |", "|---|---|"]
            for p in params:
                if getattr(p, "param_type_name", "") == "option":
                    names = ", ".join(f"`{o}`" for o in p.opts)
                    help_text = (p.help or "").replace("|", "\\|").replace("\n", " ")
                else:
                    names = f"`{(p.name or '').upper()}`"
                    help_text = (getattr(p, "help", "") or "").replace("|", "\\|")
                lines.append(f"| {names} | {help_text} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not DOC.exists() or DOC.read_text() != text:
            print("docs/cli.md is stale: run .venv/bin/python scripts/gen_cli_docs.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
