"""``radgate tokens``: API tokens for machine clients (a PACS, OHIF, scripts), sent as a Bearer header."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from radgate.auth import Permission, parse_scopes
from radgate.auth import service as auth
from radgate.cli.app import ConfigOpt, DataDirOpt, app, console, fail, settings_from
from radgate.cli.users import cli_actor
from radgate.db import database_for
from radgate.errors import RadgateError

tokens_app = typer.Typer(help="API tokens: created for a user, shown once, revocable.")
app.add_typer(tokens_app, name="tokens")

SCOPES = ", ".join(p.value for p in Permission)


@tokens_app.command("create")
def tokens_create(
    user: Annotated[str, typer.Option("--user", help="The user the token acts for.")],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help=f"Limit the token to these permissions (repeatable): {SCOPES}."),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="A label, e.g. 'ohif' or 'pacs-stow'.")] = None,
    expires_days: Annotated[float | None, typer.Option("--expires-days", help="Expire after N days.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"token": "..."} only.')] = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create a token and print it once (only its SHA-256 is kept). Default scope: all the role allows."""
    db = database_for(settings_from(data_dir, config))
    try:
        info, secret = auth.create_token(
            db, user, parse_scopes(scope or []), cli_actor(), name=name, expires_days=expires_days
        )
    except RadgateError as exc:
        raise fail(exc.message, exc.kind.exit_code) from exc
    if as_json:
        print(json.dumps({"token": secret}))
        return
    scopes = ", ".join(s.value for s in info.scopes) or "everything the role allows"
    console.print(f"Token {info.id} for [bold]{info.username}[/bold] ({scopes}). It is shown only this once:")
    print(secret, flush=True)


@tokens_app.command("list")
def tokens_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """List tokens (never their secrets): id, user, prefix, scopes, last use, revoked."""
    try:
        tokens = auth.list_tokens(database_for(settings_from(data_dir, config)), user)
    except RadgateError as exc:
        raise fail(exc.message, exc.kind.exit_code) from exc
    if as_json:
        print(json.dumps([t.to_json() for t in tokens], indent=2))
        return
    table = Table(title="API tokens")
    for col in ("id", "user", "name", "prefix", "scopes", "last used", "state"):
        table.add_column(col)
    for t in tokens:
        state = (
            "revoked"
            if t.revoked_at
            else ("expires " + t.expires_at.date().isoformat() if t.expires_at else "")
        )
        table.add_row(
            str(t.id),
            t.username,
            t.name or "",
            t.prefix + "…",
            ", ".join(s.value for s in t.scopes) or "(role)",
            t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "",
            state,
        )
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (`radgate tokens list`).")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Revoke a token: it stops working at once."""
    try:
        info = auth.revoke_token(database_for(settings_from(data_dir, config)), token_id, cli_actor())
    except RadgateError as exc:
        raise fail(exc.message, exc.kind.exit_code) from exc
    console.print(f"Token {info.id} of [bold]{info.username}[/bold] revoked.")
