"""Lazy commands: ``radgate --help`` lists every command without importing one; a command's module is
imported only when that command runs.

Each command module (``radgate.cli.models`` ...) registers its commands on the shared Typer ``app`` when it
is imported, and imports the services it calls (numpy, pydicom, SQLAlchemy, onnxruntime ...). Importing
all of them made every command wait seconds before doing anything. The root group below knows, from
:data:`COMMANDS`, which module registers which top-level command and that command's one-line help; it
imports a module when one of its commands is resolved, and shows the table's help in the command list.
``tests/test_cli_lazy.py`` checks the table against the modules (names, order and help).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any, NamedTuple

from typer import _click as click  # Typer (>= 0.24) vendors click: its groups and errors are these classes
from typer.core import TyperCommand, TyperGroup

# typer.rich_utils (imported by Typer to print help and errors) imports rich.markdown (markdown-it) and
# rich.traceback (pygments) at its top, for the "markdown" markup mode and for pretty tracebacks; radgate uses
# neither, and the two are about 40 % of the cost of printing help. While typer.rich_utils executes, the
# finder below gives it stand-ins for ``Markdown`` and ``Traceback`` that import the real classes on first
# use; right after, the real modules are importable as usual (nothing else ever sees a stand-in).
_DEFERRED = {"rich.markdown": "Markdown", "rich.traceback": "Traceback"}


class _DeferredClass(type):
    """A stand-in class: calling it, or any attribute of it, imports the real one."""

    _module: str
    _name: str

    def _real(cls) -> Any:
        return getattr(importlib.import_module(cls._module), cls._name)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._real()(*args, **kwargs)

    def __getattr__(cls, name: str) -> Any:
        return getattr(cls._real(), name)

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls._real())


class _LightRichUtils(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "typer.rich_utils":
            return None
        sys.meta_path.remove(self)  # once
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        real_exec = spec.loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            stand_ins = {}
            for name, attr in _DEFERRED.items():
                if name not in sys.modules:
                    stub = types.ModuleType(name)
                    setattr(stub, attr, _DeferredClass(attr, (), {"_module": name, "_name": attr}))
                    stand_ins[name] = sys.modules[name] = stub
            try:
                real_exec(module)
            finally:
                for name, stub in stand_ins.items():
                    if sys.modules.get(name) is stub:
                        del sys.modules[name]

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if "typer.rich_utils" not in sys.modules and not any(isinstance(f, _LightRichUtils) for f in sys.meta_path):
    sys.meta_path.insert(0, _LightRichUtils())


class LazyCommand(NamedTuple):
    module: str
    """The module under ``radgate.cli`` whose import registers the command."""
    group: bool
    """True for a sub-app (``app.add_typer``), False for a command (``@app.command``)."""
    help: str
    """The one-line help shown by ``radgate --help``."""


# Top-level commands in the order their modules register them (register_commands' order).
COMMANDS: dict[str, LazyCommand] = {
    "users": LazyCommand(
        "users",
        True,
        "Users and their roles (radiologist, admin, director, data_scientist, auditor).",
    ),
    "audit": LazyCommand(
        "audit",
        True,
        "The append-only, hash-chained audit log.",
    ),
    "demo": LazyCommand(
        "demo",
        False,
        "Generate a synthetic site, send it to a gateway, run the demo model and deliver its results.",
    ),
    "readiness": LazyCommand(
        "engine",
        False,
        "The go-live gate: is this deployment ready to go live at its site? (exit 1 when not).",
    ),
    "deployments": LazyCommand(
        "engine",
        True,
        "Deployments: model version x site x rules x mode.",
    ),
    "predictions": LazyCommand(
        "engine",
        True,
        "Stored predictions and routing decisions.",
    ),
    "engine": LazyCommand(
        "engine",
        True,
        "The inference engine.",
    ),
    "serve": LazyCommand(
        "ingest",
        False,
        "Run the gateway: DIMSE C-ECHO/C-STORE SCP and the HTTP app (DICOMweb, API, pages).",
    ),
    "import": LazyCommand(
        "ingest",
        False,
        "Import DICOM files from folders, with a progress bar and a summary.",
    ),
    "rejections": LazyCommand(
        "ingest",
        False,
        "List recent rejections and quarantined instances with their reasons.",
    ),
    "series": LazyCommand(
        "ingest",
        False,
        "List received series with their assembly status (receiving, complete, incomplete).",
    ),
    "expect": LazyCommand(
        "ingest",
        False,
        "Set a series' expected instance count: it completes as soon as that many have arrived.",
    ),
    "compare": LazyCommand(
        "learning",
        False,
        "Challenger against champion on paired cases: ΔAUC (paired DeLong), McNemar, subgroups, calibration.",
    ),
    "pool": LazyCommand(
        "learning",
        False,
        "Pool exports from several sites: per-site and pooled AUC, Se, Sp with CIs; Cochran's Q and I².",
    ),
    "learn": LazyCommand(
        "learning",
        True,
        "Active learning: annotation queue and label requests.",
    ),
    "export": LazyCommand(
        "learning",
        True,
        "De-identified exports (DICOM PS3.15 Annex E).",
    ),
    "models": LazyCommand(
        "models",
        True,
        "Model packages: install, list, show, verify, remove.",
    ),
    "monitor": LazyCommand(
        "monitoring",
        True,
        "Monitoring: periods against the baseline, drift, alerts.",
    ),
    "alerts": LazyCommand(
        "monitoring",
        True,
        "Monitoring alerts: list, acknowledge, resolve.",
    ),
    "process": LazyCommand(
        "process",
        False,
        "Assemble, route, run the models and publish to completion, without a server.",
    ),
    "outbox": LazyCommand(
        "results",
        True,
        "The results outbox: what was sent where, what failed and why.",
    ),
    "init": LazyCommand(
        "scale",
        False,
        "Create a data directory: its database at the newest schema, the instance store, a radgate.toml.",
    ),
    "worker": LazyCommand(
        "scale",
        False,
        "Run engine, results and monitoring workers as their own processes (beside `serve --no-workers`).",
    ),
    "score": LazyCommand(
        "scale",
        False,
        "Score images with one model version on Ray Data; write Parquet (and retrospective predictions).",
    ),
    "db": LazyCommand(
        "scale",
        True,
        "The database schema: migrations to the newest revision, and where it stands.",
    ),
    "synth": LazyCommand(
        "synth",
        True,
        "Synthetic site: phantom chest radiographs with realistic headers (not patient data).",
    ),
    "tokens": LazyCommand(
        "tokens",
        True,
        "API tokens: created for a user, shown once, revocable.",
    ),
    "validate": LazyCommand(
        "validation",
        False,
        "Validate scores against reference labels: AUC (DeLong), Se/Sp (Wilson), PPV/NPV, subgroups.",
    ),
    "plan": LazyCommand(
        "validation",
        False,
        "Expected true positives, false positives and misses per day, and false positives per true positive.",
    ),
    "trial": LazyCommand(
        "validation",
        True,
        "Silent trials: register acceptance criteria, evaluate against them.",
    ),
    "truth": LazyCommand(
        "validation",
        True,
        "Ground truth (reference labels) in the database.",
    ),
    "report": LazyCommand(
        "validation",
        True,
        "Reports.",
    ),
}


#: Sub-apps that other modules add commands to: ``radgate.cli.learning`` adds ``deployments promote`` (and
#: lock-criteria, rollback, changes) and ``models recalibrate``. Those modules are imported only when such a
#: subcommand (or the group's own help) is asked for, so ``radgate models list`` stays light.
EXTENSIONS: dict[str, tuple[str, ...]] = {"deployments": ("learning",), "models": ("learning",)}


def listed_order() -> list[str]:
    """Typer's order: the commands (``@app.command``) first, then the sub-apps, each in registration order."""
    return [n for n, c in COMMANDS.items() if not c.group] + [n for n, c in COMMANDS.items() if c.group]


def _load(name: str) -> click.Command | None:
    """Import the module that registers ``name`` and build its click command from the Typer app."""
    import typer.main

    from radgate.cli.app import app

    entry = COMMANDS.get(name)
    if entry is not None:
        importlib.import_module(f"radgate.cli.{entry.module}")
    else:  # a module not in the table yet: import them all (slow, but every command still runs)
        from radgate.cli import register_commands

        register_commands()
    options: dict[str, Any] = {
        "pretty_exceptions_short": app.pretty_exceptions_short,
        "rich_markup_mode": app.rich_markup_mode,
    }
    for info in app.registered_commands:
        callback = info.callback
        if (info.name or typer.main.get_command_name(callback.__name__ if callback else "")) == name:
            return typer.main.get_command_from_info(info, **options)
    for group in app.registered_groups:
        if group.name == name:
            return typer.main.get_group_from_info(group, suggest_commands=app.suggest_commands, **options)
    return None


class LazyGroup(TyperGroup):
    """The root ``radgate`` group: commands from :data:`COMMANDS`, each module imported on first use."""

    _listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = listed_order()
        return names + [n for n in self.commands if n not in COMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is not None:
            return command
        entry = COMMANDS.get(cmd_name)
        if self._listing and entry is not None:
            # Only the name and the help line are shown: do not import the module for that.
            return TyperCommand(cmd_name, help=entry.help)
        command = _load(cmd_name)
        if command is not None:
            self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] in EXTENSIONS:
            group = self.get_command(ctx, args[0])
            sub = next((a for a in args[1:] if not a.startswith("-")), None)
            known = getattr(group, "commands", {})
            if sub is None or sub not in known:  # the group's help, or a command another module adds
                for module in EXTENSIONS[args[0]]:
                    importlib.import_module(f"radgate.cli.{module}")
                self.commands.pop(args[0], None)
                reloaded = _load(args[0])
                if reloaded is not None:
                    self.commands[args[0]] = reloaded
        # Typer suggests close matches from ``self.commands``: offer every command, loaded or not.
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.UsageError as exc:
            if args and "Did you mean" not in exc.message:
                from difflib import get_close_matches

                matches = get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    exc.message = (
                        exc.message.rstrip(".")
                        + ". Did you mean "
                        + ", ".join(repr(m) for m in matches)
                        + "?"
                    )
            raise
