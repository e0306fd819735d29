"""`aupguard policy ...`: versions, clauses, posting, acceptance."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import typer

from aupguard.cli_support import console, parse_time, print_json, state

policy_app = typer.Typer(help="The AUP as data: versions, clauses, posting a change, acceptance.",
                         no_args_is_help=True)


@policy_app.command("versions")
def versions_cmd(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """List AUP versions and when each was posted (in force from that moment)."""
    from rich.table import Table

    from aupguard.policy import versions

    with state(ctx).store.session() as session:
        all_versions = versions(session)
    if json_out:
        print_json([{"version": v.version, "posted_at": v.posted_at, "posted_by": v.posted_by,
                     "clauses": sorted(v.clauses)} for v in all_versions])
        return
    table = Table("version", "posted at (in force from)", "posted by", "clauses")
    for v in all_versions:
        table.add_row(v.version, v.posted_at.isoformat(), v.posted_by, str(len(v.clauses)))
    console.print(table)


@policy_app.command("show")
def show_cmd(ctx: typer.Context,
             version: str = typer.Option(None, "--version", "-v", help="Version (default: in force now)."),
             json_out: bool = typer.Option(False, "--json")) -> None:
    """Show the clause catalogue of a version (default: the one in force now)."""
    from rich.table import Table

    from aupguard.policy import get_version, version_at

    with state(ctx).store.session() as session:
        v = get_version(session, version) if version else version_at(session)
    clauses = [v.clause(cid) for cid in v.clauses]
    if json_out:
        print_json({"version": v.version, "posted_at": v.posted_at,
                    "clauses": [{"id": c.id, "category": c.category, "mechanism": c.mechanism,
                                 "start": c.start, "end": c.end, "text": c.text} for c in clauses]})
        return
    console.print(f"AUP version [bold]{v.version}[/], posted {v.posted_at.isoformat()}")
    table = Table("clause", "category", "mechanism", "text", show_lines=True)
    for c in clauses:
        text = " ".join(c.text.split())
        table.add_row(c.id, c.category, c.mechanism, text if len(text) < 160 else text[:157] + "...")
    console.print(table)


@policy_app.command("clause")
def clause_cmd(ctx: typer.Context,
               clause_id: str = typer.Argument(..., help="Clause id, e.g. security.flood."),
               at: str = typer.Option(None, "--at", help="ISO-8601 time (default: now)."),
               json_out: bool = typer.Option(False, "--json")) -> None:
    """Print a clause's text as in force at a time."""
    from aupguard.policy import clause_at

    when = parse_time(at)
    with state(ctx).store.session() as session:
        clause = clause_at(session, clause_id, when)
    if json_out:
        print_json(clause)
        return
    console.print(f"[bold]{clause.id}[/] (AUP {clause.version}, in force from "
                  f"{clause.posted_at.isoformat()}; {clause.mechanism})\n")
    console.print(" ".join(clause.text.split()), highlight=False, markup=False)


@policy_app.command("post")
def post_cmd(ctx: typer.Context,
             file: Path = typer.Argument(..., help="The new AUP text (UTF-8)."),
             version: str = typer.Option(..., "--version", "-v", help="Name of the new version."),
             clauses: Path = typer.Option(None, "--clauses", help="TOML/JSON map: clause id -> {start, end, category, mechanism}; default: the shipped phrases."),
             at: str = typer.Option(None, "--at", help="Posting time (default: now)."),
             actor: str = typer.Option("cli", "--actor", help="Who posts it (audit log).")) -> None:
    """Publish a new AUP version: in force from posting; every client gets a change notice."""
    from aupguard.errors import InputError
    from aupguard.policy import post_version

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {file}: {exc}") from None
    markers = None
    if clauses:
        try:
            raw = clauses.read_bytes()
            markers = (json.loads(raw) if clauses.suffix.lower() == ".json" else tomllib.loads(raw.decode()))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read clause map {clauses}: {exc}") from None
        markers = markers.get("clauses", markers)
    with state(ctx).store.session() as session:
        posted = post_version(session, text, version, markers, parse_time(at), actor)
        from aupguard.store.outbox import queued

        notices = len([m for m in queued(session, "policy-change") if m.ref == f"policy:{version}"])
    console.print(f"posted AUP version [bold]{posted.version}[/] ({len(posted.clauses)} clauses), "
                  f"in force from {posted.posted_at.isoformat()}; {notices} change notice(s) queued")


@policy_app.command("acceptance")
def acceptance_cmd(ctx: typer.Context,
                   version: str = typer.Option(None, "--version", "-v"),
                   json_out: bool = typer.Option(False, "--json")) -> None:
    """The acceptance ledger: per client, the first activity after each posting."""
    from rich.table import Table

    from aupguard.policy import acceptances

    with state(ctx).store.session() as session:
        rows = acceptances(session, version)
        data = [{"client_id": r.client_id, "version": r.version, "accepted_at": r.accepted_at,
                 "activity": r.activity} for r in rows]
    if json_out:
        print_json(data)
        return
    table = Table("client", "version", "accepted at", "by activity")
    for r in data:
        table.add_row(r["client_id"], r["version"], r["accepted_at"].isoformat(), r["activity"])
    console.print(table)


def register(root: typer.Typer) -> None:
    root.add_typer(policy_app, name="policy")
