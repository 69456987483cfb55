"""``radgate users``: add, list, change roles, disable, reset passwords. Every change is audited."""

from __future__ import annotations

import getpass
import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from radgate.auth import Role
from radgate.auth import service as auth
from radgate.cli.app import ConfigOpt, DataDirOpt, app, console, fail, settings_from
from radgate.db import database_for
from radgate.errors import RadgateError

users_app = typer.Typer(help="Users and their roles (radiologist, admin, director, data_scientist, auditor).")
app.add_typer(users_app, name="users")

ROLES = ", ".join(r.value for r in Role)
PasswordStdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input.")
]


def cli_actor() -> str:
    """How the audit log names a command-line operator: ``cli:<login name>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def read_password(from_stdin: bool, required: bool) -> str | None:
    if from_stdin:
        line = sys.stdin.readline()
        if not line.strip():
            raise fail("--password-stdin: standard input holds no password (one line expected).", 2)
        return line.rstrip("\r\n")
    if sys.stdin.isatty():
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    if required:
        raise fail("No password given: pass --password-stdin and write it to standard input.", 2)
    return None


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name (no spaces, '/' or ':').")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {ROLES}.")],
    password_stdin: PasswordStdinOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Add a user. Without a password (not a terminal, no --password-stdin) it can only use API tokens."""
    settings = settings_from(data_dir, config)
    password = read_password(password_stdin, required=False)
    try:
        user = auth.add_user(database_for(settings), name, role, password, settings.auth, cli_actor())
    except RadgateError as exc:
        raise fail(exc.message, exc.kind.exit_code) from exc
    how = "can sign in" if user.has_password else "has no password: API tokens only (`users reset-password`)"
    console.print(f"User [bold]{user.username}[/bold] added as {user.role.value}; {how}.")


@users_app.command("list")
def users_list(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List users with their role and state."""
    users = auth.list_users(database_for(settings_from(data_dir, config)))
    if as_json:
        print(json.dumps([u.to_json() for u in users], indent=2))
        return
    table = Table(title="Users")
    for col in ("user", "role", "state", "password", "last sign-in"):
        table.add_column(col)
    for u in users:
        state = "disabled" if u.disabled else ("locked" if u.locked_until else "active")
        last = u.last_sign_in_at.isoformat(timespec="seconds") if u.last_sign_in_at else ""
        table.add_row(u.username, u.role.value, state, "yes" if u.has_password else "no", last)
    console.print(table)
    if not users:
        console.print(
            "No users yet: `radgate users add NAME --role admin --password-stdin` creates the first."
        )


@users_app.command("set-role")
def users_set_role(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Argument(help=f"The new role: {ROLES}.")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Change a user's role."""
    try:
        user = auth.set_role(database_for(settings_from(data_dir, config)), name, role, cli_actor())
    except RadgateError as exc:
        raise fail(exc.message, exc.kind.exit_code) from exc
    console.print(f"User [bold]{user.username}[/bold] is now {user.role.value}.")


@users_app.command("disable")
def users_disable(
    name: Annotated[str, typer.Argument(help="User name.")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Disable a user: no sign-in, none of its tokens work, its open sessions end."""
    try:
        user = auth.disable_user(database_for(settings_from(data_dir, config)), name, cli_actor())
    except RadgateError as exc:
        raise fail(exc.message, exc.kind.exit_code) from exc
    console.print(f"User [bold]{user.username}[/bold] disabled.")


@users_app.command("enable")
def users_enable(
    name: Annotated[str, typer.Argument(help="User name.")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Enable a disabled user again (and lift a lock-out)."""
    try:
        user = auth.enable_user(database_for(settings_from(data_dir, config)), name, cli_actor())
    except RadgateError as exc:
        raise fail(exc.message, exc.kind.exit_code) from exc
    console.print(f"User [bold]{user.username}[/bold] enabled.")


@users_app.command("reset-password")
def users_reset_password(
    name: Annotated[str, typer.Argument(help="User name.")],
    password_stdin: PasswordStdinOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Set a new password (lifts a lock-out, ends the user's open sessions)."""
    settings = settings_from(data_dir, config)
    password = read_password(password_stdin, required=True)
    assert password is not None
    try:
        user = auth.reset_password(database_for(settings), name, password, settings.auth, cli_actor())
    except RadgateError as exc:
        raise fail(exc.message, exc.kind.exit_code) from exc
    console.print(f"Password of [bold]{user.username}[/bold] changed.")
