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


def _default(p: Any) -> str:
    """The default as help shows it (empty for flags off, ``None`` and options that hide it)."""
    if getattr(p, "show_default", None) is False or p.required:
        return ""
    value = p.default
    if callable(value) or value is None or value is False or value == () or value == []:
        return ""
    if value is True:
        return "on"
    if isinstance(value, (list, tuple)):
        return ", ".join(f"`{v}`" for v in value)
    return f"`{getattr(value, 'value', value)}`"


def _params(cmd: Any) -> list[str]:
    from radgate.cli.app import metavar

    params = [p for p in cmd.params if p.name not in ("help",)]
    if not params:
        return []
    lines = ["| argument / option | value | default | help |", "|---|---|---|---|"]
    for p in params:
        shown = metavar(p) or ""
        if getattr(p, "param_type_name", "") == "option":
            names = ", ".join(f"`{o}`" for o in p.opts)
            help_text = (p.help or "").replace("|", "\\|").replace("\n", " ")
            value = f"`{shown}`".replace("|", "\\|") if shown else ""
        else:
            names = f"`{shown}`"
            help_text = (getattr(p, "help", "") or "").replace("|", "\\|")
            value = ""
        required = " (required)" if p.required and value else ""
        lines.append(f"| {names} | {value}{required} | {_default(p)} | {help_text} |")
    return [*lines, ""]


def render() -> str:
    root = load_app()
    lines = [
        "# Command line",
        "",
        "Generated from the code by `scripts/gen_cli_docs.py`; `tests/test_docs.py` fails when it is stale.",
        "Every command takes `--data-dir DIR` and `--config FILE` (see [configuration](configuration.md));",
        "`radgate --version` prints the version.",
        "",
    ]
    for path, cmd in walk(root, ["radgate"])[1:]:
        if getattr(cmd, "commands", None):
            lines += [f"## `{' '.join(path)}`", "", (cmd.help or "").strip(), ""]
            lines += _params(cmd)  # a group's own options (`radgate synth --out DIR ...`)
            continue
        lines += [f"### `{' '.join(path)}`", "", (cmd.help or "").strip().split("\n\n")[0], ""]
        lines += _params(cmd)
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
