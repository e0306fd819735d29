"""`aupguard intake ...`: the abuse mailbox from the command line."""

from __future__ import annotations

from pathlib import Path

import typer

from aupguard.cli_support import console, print_json, state

intake_app = typer.Typer(help="Abuse mailbox: receive, import, parse and attribute complaints.",
                         no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Machine-readable output.")


def safe(value) -> str:
    """Complaint text is attacker-controlled: no rich markup, no terminal control codes."""
    from rich.markup import escape

    text = "".join(ch if ch.isprintable() or ch in "\n\t" else "?" for ch in str(value))
    return escape(text)


def _event_dict(row) -> dict:
    data = row.as_dict()
    data.pop("dedupe_key", None)
    return data


@intake_app.command("serve")
def serve_cmd(ctx: typer.Context,
              host: str = typer.Option(None, "--host", help="Bind address (default: "
                                       "intake.listen_host)."),
              port: int = typer.Option(None, "--port", min=0, max=65535,
                                       help="TCP port (default: intake.listen_port).")) -> None:
    """Run the SMTP listener for the abuse addresses until Ctrl-C (and poll IMAP if set)."""
    import time

    from aupguard.intake.server import IntakeServer

    app = state(ctx)
    settings = app.settings
    if host:
        settings.intake.listen_host = host
    if port is not None:
        settings.intake.listen_port = port
    server = IntakeServer(settings, app.store)
    server.start()
    config = settings.intake
    console.print(f"intake listening on {config.listen_host}:{server.port} for "
                  f"{', '.join(config.addresses)} (Maildir spool: {server.maildir.root})"
                  + (f"; polling IMAP {config.imap_host} every {config.imap_poll_seconds} s"
                     if config.imap_host else ""))
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        console.print(f"stopped: {server.stats}")


@intake_app.command("import")
def import_cmd(ctx: typer.Context,
               path: Path = typer.Argument(..., help="A Maildir folder, an mbox file, a single "
                                           ".eml/.json/.csv/.zip file, or a folder of them."),
               json_out: bool = JSON) -> None:
    """Import complaints from files, with a progress bar; prints what became of them."""
    from collections import Counter

    from rich.progress import Progress

    from aupguard.intake.imports import read_source, sources
    from aupguard.intake.pipeline import Intake

    app = state(ctx)
    intake = Intake(app.settings, app.store)
    items = sources(path)
    results = []
    with Progress(console=console, transient=json_out, disable=json_out) as progress:
        task = progress.add_task(f"importing {path}", total=len(items))
        batch = []
        for item in items:
            batch.append(read_source(*item))
            if len(batch) >= 200:
                results.extend(intake.ingest_many(batch, source="import"))
                progress.advance(task, len(batch))
                batch = []
        if batch:
            results.extend(intake.ingest_many(batch, source="import"))
            progress.advance(task, len(batch))
    if json_out:
        print_json([r.__dict__ for r in results])
        return
    statuses = Counter(r.status for r in results)
    events = sum(len(r.event_ids) for r in results)
    console.print(f"{len(results)} message(s): " + ", ".join(f"{n} {s}" for s, n in
                                                             sorted(statuses.items()))
                  + f"; {events} event(s)")
    for result in results:
        for error in result.errors[:3]:
            console.print(f"  {result.reference}: {error}", markup=False, highlight=False)


@intake_app.command("poll")
def poll_cmd(ctx: typer.Context) -> None:
    """Fetch unseen mail once from the configured IMAP mailbox (intake.imap_*)."""
    from aupguard.errors import ConfigError
    from aupguard.intake.imports import poll_imap
    from aupguard.intake.pipeline import Intake

    app = state(ctx)
    config = app.settings.intake
    if not config.imap_host:
        raise ConfigError("no IMAP server configured: set intake.imap_host, imap_user and "
                          "imap_password in aupguard.toml")
    count = poll_imap(Intake(app.settings, app.store), host=config.imap_host,
                      port=config.imap_port, user=config.imap_user,
                      password=config.imap_password, folder=config.imap_folder,
                      use_ssl=config.imap_ssl)
    console.print(f"{count} message(s) imported from {config.imap_host}")


@intake_app.command("parse")
def parse_cmd(ctx: typer.Context,
              file: Path = typer.Argument(..., help="A complaint file to parse (nothing stored)."),
              json_out: bool = JSON) -> None:
    """Show which parser recognises a file and the events it finds, without storing."""
    from rich.table import Table

    from aupguard.errors import InputError
    from aupguard.intake.mime import Limits, parse_complaint
    from aupguard.intake.parsers import ParseContext, parse
    from aupguard.intake.parsers.shadowserver import load_catalogue

    if not file.is_file():
        raise InputError(f"{file} is not a file")
    settings = state(ctx).settings.intake
    complaint = parse_complaint(file.read_bytes(), Limits.from_settings(settings), file.name)
    context = ParseContext(excerpt_chars=settings.excerpt_chars,
                           shadowserver_catalogue=load_catalogue(settings.shadowserver_catalogue),
                           xarf_schema_dir=settings.xarf_schema_dir, errors=complaint.errors)
    parser, events = parse(complaint, context)
    if json_out:
        print_json({"parser": parser, "errors": context.errors,
                    "events": [{**e.__dict__, "clause_id": e.clause_id} for e in events]})
        return
    table = Table("ip", "port", "time (UTC)", "category", "clause", "url/domain",
                  title=f"{file.name}: {parser}")
    for e in events:
        table.add_row(e.ip or "-", str(e.port or "-"), e.time.isoformat() if e.time else "-",
                      e.category, e.clause_id, safe((e.url or e.domain or "-")[:60]))
    console.print(table)
    for error in context.errors:
        console.print(f"error: {error}", markup=False, highlight=False)


@intake_app.command("messages")
def messages_cmd(ctx: typer.Context,
                 status: str = typer.Option(None, "--status", help="parsed, partial, failed, "
                                            "duplicate or empty."),
                 limit: int = typer.Option(50, "--limit", min=1), json_out: bool = JSON) -> None:
    """List received complaints, newest first."""
    from rich.table import Table

    from aupguard.intake.api import list_messages

    with state(ctx).store.session() as session:
        rows = list_messages(session, status=status, limit=limit)
    if json_out:
        print_json([r.as_dict() for r in rows])
        return
    table = Table("id", "reference", "received", "reporter", "parser", "status", "events",
                  "subject")
    for r in rows:
        table.add_row(str(r.id), r.reference, f"{r.received_at:%Y-%m-%d %H:%M}",
                      safe(r.reporter), r.parser, r.status, str(r.event_count),
                      safe(r.subject[:50]))
    console.print(table)


def _events_table(rows, title: str):
    from rich.table import Table

    table = Table("id", "msg", "ip", "port", "time (UTC)", "category", "clause", "client",
                  "status", "reason", title=title)
    for r in rows:
        table.add_row(str(r.id), str(r.message_id), r.ip or "-", str(r.port or "-"),
                      r.time.isoformat() if r.time else "-", r.category, r.clause_id,
                      r.client_id or "-", r.status, safe(r.review_reason or ""))
    return table


@intake_app.command("events")
def events_cmd(ctx: typer.Context,
               status: str = typer.Option(None, "--status", help="attributed, review, "
                                          "dismissed or duplicate."),
               client: str = typer.Option(None, "--client", help="Only this client's events."),
               limit: int = typer.Option(100, "--limit", min=1), json_out: bool = JSON) -> None:
    """List complaint events, newest first."""
    from aupguard.intake.api import list_events

    with state(ctx).store.session() as session:
        rows = list_events(session, status=status, client_id=client, limit=limit)
    if json_out:
        print_json([_event_dict(r) for r in rows])
        return
    console.print(_events_table(rows, "complaint events"))


@intake_app.command("review")
def review_cmd(ctx: typer.Context, json_out: bool = JSON) -> None:
    """The review queue: events with no client, several candidates, or a vague time."""
    from aupguard.intake.api import review_queue

    with state(ctx).store.session() as session:
        rows = review_queue(session)
    if json_out:
        print_json([_event_dict(r) for r in rows])
        return
    console.print(_events_table(rows, f"review queue ({len(rows)})"))
    if rows:
        console.print("resolve with `aupguard intake assign EVENT CLIENT` or "
                      "`aupguard intake dismiss EVENT`")


@intake_app.command("assign")
def assign_cmd(ctx: typer.Context, event: int = typer.Argument(..., help="Event id."),
               client: str = typer.Argument(..., help="Client id."),
               actor: str = typer.Option("cli", "--actor", help="Who decides (audit log).")) -> None:
    """Attribute a review-queue event to a client by hand (opens its incident)."""
    from aupguard.intake.api import assign_event

    with state(ctx).store.session() as session:
        row = assign_event(session, event, client, actor)
        console.print(f"event {row.id} -> {client}, incident {row.incident_id}")


@intake_app.command("dismiss")
def dismiss_cmd(ctx: typer.Context, event: int = typer.Argument(..., help="Event id."),
                note: str = typer.Option("", "--note", help="Why (kept in the audit log)."),
                actor: str = typer.Option("cli", "--actor", help="Who decides (audit log).")) -> None:
    """Dismiss a review-queue event (kept, audited, no incident)."""
    from aupguard.intake.api import dismiss_event

    with state(ctx).store.session() as session:
        dismiss_event(session, event, actor, note)
    console.print(f"event {event} dismissed")


@intake_app.command("show")
def show_cmd(ctx: typer.Context, message: int = typer.Argument(..., help="Message id."),
             raw: bool = typer.Option(False, "--raw", help="Print the raw message as stored."),
             json_out: bool = JSON) -> None:
    """One received complaint: its record, errors and events (or its raw bytes)."""
    import sys

    from aupguard.errors import InputError
    from aupguard.intake.api import get_message, list_events
    from aupguard.intake.rawstore import RawStore

    app = state(ctx)
    with app.store.session() as session:
        row = get_message(session, message)
        if row is None:
            raise InputError(f"no message {message} (see `aupguard intake messages`)")
        events = list_events(session, message_id=message)
    if raw:
        raw_text = RawStore(Path(app.settings.data_dir) / "intake").get(row.raw_ref).decode(
            "utf-8", "replace")
        if sys.stdout.isatty():  # never replay a complaint's escape sequences on a terminal
            raw_text = "".join(ch if ch.isprintable() or ch in "\n\t" else "?"
                               for ch in raw_text)
        sys.stdout.write(raw_text)
        return
    if json_out:
        print_json({**row.as_dict(), "events": [_event_dict(e) for e in events]})
        return
    for key, value in row.as_dict().items():
        console.print(f"{key:>14}: {safe(value)}", highlight=False)
    console.print(_events_table(events, "events"))


def register(root: typer.Typer) -> None:
    root.add_typer(intake_app, name="intake")
