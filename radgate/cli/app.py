"""The Typer application and the options every command shares (``--data-dir``, ``--config``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from radgate.cli.lazy import LazyGroup
from radgate.config import ConfigError, Settings, load_settings
from radgate.errors import RadgateError

app = typer.Typer(
    name="radgate",
    cls=LazyGroup,
    help="radgate: an AI gateway for medical imaging. Infrastructure, not a medical device.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    # A root callback makes the app a group even before any command module is imported (see lazy.py).
    pass


console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (database, instance store). Env: RADGATE_DATA_DIR."),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="TOML config file. Env: RADGATE_CONFIG. Default: DATA_DIR/radgate.toml."),
]


def settings_from(data_dir: Path | None, config: Path | None, **overrides: Any) -> Settings:
    """Load settings for a command, turning configuration mistakes into a clear exit (code 2)."""
    try:
        settings = load_settings(config=config, data_dir=data_dir, **overrides)
    except ConfigError as exc:
        err_console.print(f"[red]Configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return settings


@contextmanager
def cli_errors() -> Iterator[None]:
    """Show a :class:`radgate.errors.RadgateError` as one red line and exit with its kind's code."""
    try:
        yield
    except RadgateError as exc:
        raise fail(exc.message, exc.kind.exit_code) from exc


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as an error and return the Exit to raise."""
    from rich.markup import escape

    err_console.print(f"[red]Error:[/red] {escape(message)}")  # a message's [brackets] are text, not markup
    return typer.Exit(code)
