"""``radgate audit``: check the hash chain of the audit log, export it for a SIEM."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from radgate import audit
from radgate.cli.app import ConfigOpt, DataDirOpt, app, console, err_console, fail, settings_from
from radgate.cli.users import cli_actor
from radgate.db import database_for

audit_app = typer.Typer(help="The append-only, hash-chained audit log.")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    as_json: Annotated[bool, typer.Option("--json", help='Print {"ok", "entries", "first_bad"}.')] = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Recompute every hash and link; exit 1 and name the first bad entry when one does not check out."""
    db = database_for(settings_from(data_dir, config))
    with db.session() as s:
        result = audit.verify_chain(s)
    if as_json:
        print(json.dumps(result.to_json()))
    elif result.ok:
        console.print(f"Audit log intact: {result.entries} entries, every hash and link checks out.")
    else:
        err_console.print(
            f"[red]Audit log damaged:[/red] {result.reason} (first bad entry: {result.first_bad})."
        )
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    format: Annotated[
        str, typer.Option("--format", help="json (an array) or jsonl (one entry a line).")
    ] = "json",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    action: Annotated[str | None, typer.Option("--action", help="Only actions starting with this.")] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Export the audit log, oldest first, with each entry's hashes, for a SIEM. The export is audited."""
    if format not in ("json", "jsonl"):
        raise fail(f"--format {format!r} is not supported; use json or jsonl.", 2)
    db = database_for(settings_from(data_dir, config))
    out = output.open("w", encoding="utf-8") if output else sys.stdout
    count = 0
    try:
        with db.session() as s:
            if format == "json":
                out.write("[")
            for entry in audit.iter_entries(s, action=action):
                line = json.dumps(entry, ensure_ascii=False)
                if format == "jsonl":
                    out.write(line + "\n")
                else:
                    out.write(("," if count else "") + "\n" + line)
                count += 1
            if format == "json":
                out.write("\n]\n")
    finally:
        if output:
            out.close()
    # Recorded after the export, so an export never contains its own entry.
    detail = {"format": format, "entries": count, "action": action}
    audit.record_in(db, cli_actor(), "audit.export", str(output) if output else "stdout", detail)
