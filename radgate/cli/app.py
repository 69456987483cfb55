"""The Typer application and the options every command shares (``--data-dir``, ``--config``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from typer import _click as click
from typer.core import TyperArgument, TyperOption
from typer.models import TyperPath

from radgate import __version__, logs
from radgate.cli.lazy import LazyGroup
from radgate.errors import RadgateError

if TYPE_CHECKING:  # pydantic is imported when a command loads its settings, not for --help or --version
    from radgate.config import Settings
    from radgate.config_sources import DatabaseLocation


def metavar(param: Any) -> str | None:
    """The metavar help shows for ``param``: its own, else NAME, PATH, DIR, INTEGER, FLOAT or TEXT; a flag
    none. Typer's defaults (``<int>``, ``<path>``, ``{csv_file}``) read as Python, not as a command line."""
    if param.metavar is not None:
        return str(param.metavar)
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    return _type_metavar(param.type)


def _type_metavar(param_type: Any) -> str:
    if isinstance(param_type, TyperPath):
        return "DIR" if param_type.dir_okay and not param_type.file_okay else "PATH"
    return _TYPE_METAVARS.get(param_type.name, "TEXT")


_TYPE_METAVARS = {"int": "INTEGER", "int range": "INTEGER", "float": "FLOAT", "float range": "FLOAT"}


def _usage_name(self: TyperArgument) -> str:
    name = metavar(self) or ""
    return name if self.required else f"[{name}]"  # Typer's usage line adds "..." for nargs != 1 itself


def _argument_metavar(self: TyperArgument) -> str | None:
    # An argument is shown by its name in capitals (CSV_FILE), in the usage line and the help panel alike.
    given: str | None = self.__dict__.get("_metavar")
    return given if given is not None else str(self.name or "").upper()


def _set_argument_metavar(self: TyperArgument, value: str | None) -> None:
    self.__dict__["_metavar"] = value


# Typer 0.28's help (pyproject pins < 0.29; Typer 0.29 replaced these hooks) asks a parameter's type for its
# metavar (ParamType.get_metavar, else "<name>") and a parameter for its own (make_metavar). The types without
# one of their own (DateTime and choices keep theirs) and both kinds of parameter answer as above.
click.types.ParamType.get_metavar = lambda self, param, ctx: _type_metavar(self)  # type: ignore[method-assign]
TyperOption.make_metavar = lambda self, ctx: metavar(self) or ""  # type: ignore[method-assign]
TyperArgument.metavar = property(_argument_metavar, _set_argument_metavar)  # type: ignore[assignment]
TyperArgument.make_metavar = (  # type: ignore[method-assign]
    lambda self, ctx, *, usage=False: _usage_name(self) if usage else metavar(self) or ""
)


#: Errors about a path the user gave (missing, already there, not readable): shown as one line.
USER_OS_ERRORS = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError)


class RadgateGroup(LazyGroup):
    """The root group. A failure a command did not catch itself (a :class:`RadgateError`: a missing data
    directory, a schema that is behind ...; a path the user gave) is one red line and its kind's exit code,
    never a traceback: decided here only."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RadgateError as exc:
            raise fail(exc.message, exc.kind.exit_code) from None
        except USER_OS_ERRORS as exc:
            # A path the user gave that is missing, taken or not readable: name it, no traceback.
            where = f": {exc.filename}" if exc.filename else ""
            raise fail(f"{exc.strerror or exc}{where}.", 1) from None
        except KeyboardInterrupt:
            err_console.print("Interrupted.")
            raise typer.Exit(130) from None


app = typer.Typer(
    name="radgate",
    cls=RadgateGroup,
    help="radgate: an AI gateway for medical imaging. Infrastructure, not a medical device.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"show_default": True},
)


def _version(value: bool) -> None:
    if value:
        print(f"radgate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print radgate's version and exit."
        ),
    ] = False,
) -> None:
    # A root callback makes the app a group even before any command module is imported (see lazy.py).
    pass


#: Column headers that hold identifiers (UIDs, names, versions, ids): the values the next command needs.
IDENTIFIER_HEADER = re.compile(
    r"(?i)(uid|^(name|model|version|deployment|model / version|user|username|site|id|alert|token|series"
    r"|study|challenger|champion|destination|aet?|scenario|profile|#)$)"
)


OTHER_MIN_WIDTH = 12


def _plain(cell: Any) -> str | None:
    """The text a str or Text cell shows (markup and emoji codes rendered); None for another renderable."""
    from rich.text import Text

    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        # Markup ("[bold]") and emoji codes (":warning:") change the text; anything else is shown as it is.
        return cell if "[" not in cell and ":" not in cell else Text.from_markup(cell).plain
    return None


def _cell_width(cell: Any) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in (_plain(cell) or "").splitlines()), default=0)


def _longest_word(cell: Any) -> int:
    """A text cell's narrowest width as Rich measures it: its longest word (its widest line if none)."""
    from rich.cells import cell_len

    text = _plain(cell) or ""
    return max((cell_len(word) for word in text.split()), default=0) or _cell_width(cell)


def fit_identifiers(table: Any, console: Console) -> int | None:
    """Make ``table`` show every identifier whole; returns the width it needs when wider than ``console``.

    Identifier columns (a header like ``SeriesInstanceUID``, ``Name``, ``Model``, ``Version``, or a column
    declared ``no_wrap``) are never wrapped nor cut; every other column folds instead of ending in "…".
    When the identifiers alone are wider than the terminal, the table is printed wider than the terminal
    rather than cut (the terminal wraps the line; copying the UID still gives the whole UID).
    """
    # The table's minimum width as Rich measures text cells: a column's longest word, or its min_width (an
    # identifier's widest cell), plus padding and borders. Within the terminal, Rich's measurement (which
    # lays the whole table out twice) is not needed; tests/test_cli_tables.py holds the two together.
    bound = table._extra_width
    text_only = True
    for column in table.columns:
        header = column.header if isinstance(column.header, str) else str(column.header)
        cells = [*column._cells, column.header, column.footer]
        text_only &= all(_plain(c) is not None for c in cells)
        widest = max(_cell_width(c) for c in cells)
        if column.no_wrap or IDENTIFIER_HEADER.search(header.strip()):
            column.no_wrap = True
            column.overflow = "ignore"
            column.min_width = max(column.min_width or 0, widest)
        else:
            if column.overflow == "ellipsis":
                column.overflow = "fold"
            # Room for a word or two, so a column squeezed by identifiers still reads (not 1 character wide).
            column.min_width = max(column.min_width or 0, min(widest, OTHER_MIN_WIDTH))
        if column.width is not None:
            narrowest = column.width
        else:
            narrowest = max([_longest_word(c) for c in cells] + [column.min_width or 0])
            if column.max_width is not None:
                narrowest = min(narrowest, column.max_width)
        bound += narrowest + table._get_padding_width(column._index)
    if text_only and max(bound, table.min_width or 0) <= console.width:
        return None
    # Measured without the terminal's limit: Rich clamps each cell's measurement to the width it is offered,
    # so an identifier wider than the terminal would count as the terminal's width, and the table printed at
    # that width would then squeeze every other column to nothing.
    need = int(table.__rich_measure__(console, console.options.update_width(1_000_000)).minimum)
    return need if need > console.width else None


class RadgateConsole(Console):
    """A console whose tables never cut identifiers (see :func:`fit_identifiers`)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        from rich.table import Table

        need = None
        for obj in objects:
            if isinstance(obj, Table):
                wider = fit_identifiers(obj, self)
                if wider is not None and kwargs.get("width") is None:
                    need = max(need or 0, wider)
        if need is None:
            super().print(*objects, **kwargs)
            return
        # print(width=...) is capped at the console's width, so the console itself is widened for this call.
        kwargs["crop"] = False
        saved = self._width
        self.width = need
        try:
            super().print(*objects, **kwargs)
        finally:
            self._width = saved


console = RadgateConsole(highlight=False)
err_console = RadgateConsole(stderr=True, highlight=False)


DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        metavar="DIR",
        help="Data directory (database, instance store). Env: RADGATE_DATA_DIR.",
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        help="TOML config file. Env: RADGATE_CONFIG. Default: DATA_DIR/radgate.toml.",
        show_default=False,
    ),
]


def settings_from(
    data_dir: Path | None, config: Path | None, *, server: bool = False, **overrides: Any
) -> Settings:
    """Load settings for a command, turning configuration mistakes into a clear exit (code 2).

    Logging goes to the console once (:mod:`radgate.logs`): a one-shot command shows warnings and errors
    on standard error (its own output says what happened; at ``log_level = "DEBUG"`` everything shows);
    ``server=True`` (``radgate serve``) shows every event, with a time, on standard output.
    """
    from radgate.config import load_settings

    with _config_errors():
        settings = load_settings(config=config, data_dir=data_dir, **overrides)
    _configure_logs(settings.log_level, settings.log_format, server=server)
    return settings


def light_settings_from(data_dir: Path | None, config: Path | None) -> DatabaseLocation:
    """:func:`settings_from` for a read-only listing (``series``, ``models list``): the data directory,
    database and log keys without the schema (:func:`radgate.config_sources.light_settings`, no pydantic);
    all settings, validated, when one of those keys needs the schema to say what is wrong with it."""
    from radgate.config_sources import light_settings

    with _config_errors():
        light = light_settings(config=config, data_dir=data_dir)
    if light is None:
        return settings_from(data_dir, config)
    _configure_logs(light.log_level, light.log_format, server=False)
    return light


@contextmanager
def _config_errors() -> Iterator[None]:
    from radgate.config_sources import ConfigError

    try:
        yield
    except ConfigError as exc:
        err_console.print("[red]Configuration error:[/red] ", end="")
        err_console.print(str(exc), markup=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _configure_logs(log_level: str, log_format: str, *, server: bool) -> None:
    level = log_level.upper()
    if not server and level != "DEBUG":
        numeric = logging.getLevelName(level)
        level = level if isinstance(numeric, int) and numeric > logging.WARNING else "WARNING"
    logs.configure(
        level,
        log_format,
        "stdout" if server else "stderr",
        timestamps=server and log_format == "human",
    )
    logs.caller_reports(True)  # serve turns it off once it is listening


@contextmanager
def cli_errors() -> Iterator[None]:
    """Show a :class:`radgate.errors.RadgateError` as one red line and exit with its kind's code."""
    try:
        yield
    except RadgateError as exc:
        raise fail(exc.message, exc.kind.exit_code) from exc


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as an error (one line: the message is not read as markup) and return the Exit."""
    err_console.print("[red]Error:[/red] ", end="")
    err_console.print(message, markup=False, soft_wrap=True)
    return typer.Exit(code)
