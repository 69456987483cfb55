"""The ``radgate`` command line: one Typer app, one module per domain, each calling services."""

from __future__ import annotations

from radgate.cli.app import app, console


def register_commands() -> None:
    """Import the command modules; importing one registers its commands on ``app``."""
    from radgate.cli import (  # noqa: F401
        audit,
        demo,
        engine,
        ingest,
        learning,
        models,
        monitoring,
        process,
        results,
        scale,
        synth,
        tokens,
        users,
        validation,
    )


def main() -> None:
    # Commands are imported when they run (radgate.cli.lazy): `radgate --help` imports none of them.
    app()


__all__ = ["app", "console", "main", "register_commands"]
