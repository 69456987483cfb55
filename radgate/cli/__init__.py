"""The ``radgate`` command line: one Typer app, one module per domain, each calling services."""

from __future__ import annotations

from radgate.cli.app import app, console


def main() -> None:
    # Importing the command modules registers their commands on ``app``.
    from radgate.cli import ingest  # noqa: F401

    app()


__all__ = ["app", "console", "main"]
