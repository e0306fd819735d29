"""`aupguard cases ...` and `aupguard audit ...`."""

from __future__ import annotations

import getpass
from pathlib import Path

import typer

from aupguard.cli_support import console, parse_time, print_json, state

ACTOR_HELP = "Who is acting (recorded in the audit log); default cli:<login>."


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="Cases: group incidents, notify clients, escalate, legal duties, export.",
                      no_args_is_help=True)
    audit_app = typer.Typer(help="The hash-chained audit log: verify it, read it.",
                            no_args_is_help=True)
    root.add_typer(app, name="cases")
    root.add_typer(audit_app, name="audit")

    @app.command("ingest")
    def ingest(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON output.")):
        """Group new attributed incidents into cases (client x clause, within the window)."""
        from aupguard.cases import service as cases

        st = state(ctx)
        with st.store.session() as session:
            touched = cases.ingest_incidents(session, st.settings, actor=_actor(None))
        if as_json:
            print_json(touched)
        else:
            console.print(f"{len(touched)} case(s) opened or grown")

    @app.command("tick")
    def tick(ctx: typer.Context, at: str = typer.Option(None, "--at", help="As of (default now)."),
             as_json: bool = typer.Option(False, "--json", help="JSON output.")):
        """One round of background work: group incidents, take due steps, deliver the outbox."""
        from aupguard.cases import service as cases

        st = state(ctx)
        with st.store.session() as session:
            rep = cases.periodic(session, st.settings, parse_time(at))
        if as_json:
            print_json(rep)
            return
        console.print(f"cases touched {len(rep.cases)}, ladder steps {len(rep.steps)}, mail sent "
                      f"{len(rep.sent)}, deferred {len(rep.deferred)}, failed {len(rep.failed)}"
                      + ("" if rep.delivery_enabled else " (delivery off: [cases] smtp_enabled)"),
                      markup=False, highlight=False)

    @app.command("list")
    def list_(ctx: typer.Context,
              status: str = typer.Option(None, help="Only this status (open, notified, ...)."),
              client: str = typer.Option(None, help="Only this client id."),
              clause: str = typer.Option(None, help="Only this clause id."),
              restricted: bool = typer.Option(False, "--restricted",
                                              help="Include restricted (CSAM) cases: legal role only."),
              as_json: bool = typer.Option(False, "--json", help="JSON output.")):
        """List cases, newest first."""
        from rich.table import Table

        from aupguard.cases import service as cases

        st = state(ctx)
        with st.store.session() as session:
            rows = cases.list_cases(session, status=status, client_id=client, clause_id=clause,
                                    restricted_ok=restricted, settings=st.settings)
        if as_json:
            print_json(rows)
            return
        if not rows:
            console.print("no cases" + ("" if restricted else " (restricted cases need --restricted)"))
            return
        table = Table("id", "client", "clause", "status", "priority", "owner", "incidents", "due",
                      "next step")
        for c in rows:
            table.add_row(str(c.id), c.client_id, c.clause_id, c.status, c.priority, c.owner or "-",
                          str(len(c.incident_ids)),
                          c.due_at.strftime("%Y-%m-%d %H:%M") if c.due_at else "-", c.next_step or "-")
        console.print(table)

    @app.command("show")
    def show(ctx: typer.Context, case_id: int = typer.Argument(..., help="Case id."),
             as_json: bool = typer.Option(False, "--json", help="JSON output.")):
        """Show a case, its timeline, evidence (hashes) and enforcement orders."""
        from aupguard.cases import service as cases
        from aupguard.errors import InputError

        st = state(ctx)
        with st.store.session() as session:
            case = cases.get_case(session, case_id, settings=st.settings)
            if case is None:
                raise InputError(f"no case #{case_id}; list cases with `aupguard cases list`")
            events = cases.timeline(session, case_id)
            items = cases.case_evidence(session, st.settings, case_id)
            orders = cases.orders(session, case_id=case_id)
            reports = cases.mandatory_reports(session, case_id)
        if as_json:
            print_json({"case": case, "timeline": events, "evidence": items, "orders": orders,
                        "mandatory_reports": reports})
            return
        console.print(f"[bold]case #{case.id}[/] {case.client_id} {case.clause_id} "
                      f"[bold]{case.status}[/] priority={case.priority} owner={case.owner or '-'}"
                      + ("  [red]RESTRICTED[/]" if case.restricted else ""), highlight=False)
        console.print(f"seen {case.first_seen:%Y-%m-%d %H:%M} .. {case.last_seen:%Y-%m-%d %H:%M}; "
                      f"due {case.due_at:%Y-%m-%d %H:%M}" if case.due_at else "no due date",
                      highlight=False)
        console.print(f"ladder: {' -> '.join(case.ladder)} (now: {case.current_step or '-'})")
        for e in events:
            console.print(f"  {e.at:%Y-%m-%d %H:%M:%S} {e.actor:<20} {e.kind:<16} {e.text[:200]}",
                          markup=False, highlight=False)
        for i in items:
            console.print(f"  evidence {i.sha256} {i.kind} {i.size} B"
                          + (f" held until {i.held_until:%Y-%m-%d}" if i.held and i.held_until
                             else " held" if i.held else ""), markup=False)
        for o in orders:
            console.print(f"  order #{o.id} {o.kind} {o.action} {o.status}", markup=False)
        for r in reports:
            console.print(f"  reported to {r.authority} as {r.report_id} at {r.reported_at}",
                          markup=False)

    @app.command("note")
    def note(ctx: typer.Context, case_id: int = typer.Argument(..., help="Case id."),
             text: str = typer.Argument(..., help="The note."),
             actor: str = typer.Option(None, help=ACTOR_HELP)):
        """Add a note to a case's timeline."""
        from aupguard.cases import service as cases

        with state(ctx).store.session() as session:
            cases.add_note(session, case_id, text, _actor(actor))
        console.print(f"note added to case #{case_id}")

    @app.command("status")
    def status(ctx: typer.Context, case_id: int = typer.Argument(..., help="Case id."),
               new_status: str = typer.Argument(..., help="open, notified, awaiting_client, "
                                                "escalated, restricted, suspended, terminated, "
                                                "resolved or closed."),
               note: str = typer.Option("", help="Why (kept in the timeline)."),
               actor: str = typer.Option(None, help=ACTOR_HELP)):
        """Change a case's status (only allowed transitions)."""
        from aupguard.cases import service as cases

        with state(ctx).store.session() as session:
            case = cases.set_status(session, case_id, new_status, _actor(actor), note=note)
        console.print(f"case #{case.id} is now {case.status}")

    @app.command("assign")
    def assign(ctx: typer.Context, case_id: int = typer.Argument(..., help="Case id."),
               owner: str = typer.Argument(..., help="New owner."),
               actor: str = typer.Option(None, help=ACTOR_HELP)):
        """Give a case an owner."""
        from aupguard.cases import service as cases

        with state(ctx).store.session() as session:
            cases.assign(session, case_id, owner, _actor(actor))
        console.print(f"case #{case_id} assigned to {owner}")

    @app.command("priority")
    def priority(ctx: typer.Context, case_id: int = typer.Argument(..., help="Case id."),
                 value: str = typer.Argument(..., help="low, normal, high or urgent."),
                 actor: str = typer.Option(None, help=ACTOR_HELP)):
        """Set a case's priority."""
        from aupguard.cases import service as cases

        with state(ctx).store.session() as session:
            cases.set_priority(session, case_id, value, _actor(actor))
        console.print(f"case #{case_id} priority {value}")

    @app.command("notify")
    def notify(ctx: typer.Context, case_id: int = typer.Argument(..., help="Case id."),
               preview: bool = typer.Option(False, "--preview", help="Show the notice, queue nothing."),
               as_json: bool = typer.Option(False, "--json", help="JSON output."),
               actor: str = typer.Option(None, help=ACTOR_HELP)):
        """Queue the notice to the client and its resellers (or preview it)."""
        from aupguard.cases import service as cases

        st = state(ctx)
        with st.store.session() as session:
            if preview:
                p = cases.preview_notice(session, st.settings, case_id, step="notice")
                if as_json:
                    print_json(p)
                else:
                    console.print(f"To: {', '.join(p.to)}\nCc: {', '.join(p.cc)}\n"
                                  f"Subject: {p.subject}\n\n{p.body}", markup=False, highlight=False)
                return
            message = cases.send_notice(session, st.settings, case_id, _actor(actor))
            result = {"case": case_id, "outbox_id": message.id, "to": message.to_addrs}
        if as_json:
            print_json(result)
        else:
            console.print(f"notice queued (outbox #{result['outbox_id']}) to "
                          f"{', '.join(result['to'])}; send with `aupguard cases deliver`")

    @app.command("escalate")
    def escalate(ctx: typer.Context, case_id: int = typer.Argument(..., help="Case id."),
                 as_json: bool = typer.Option(False, "--json", help="JSON output."),
                 actor: str = typer.Option(None, help=ACTOR_HELP)):
        """Take the next step of the case's escalation ladder."""
        from aupguard.cases import service as cases

        st = state(ctx)
        with st.store.session() as session:
            step = cases.escalate(session, st.settings, case_id, _actor(actor))
        if as_json:
            print_json(step)
        else:
            console.print(f"case #{case_id}: {step.name} -> status {step.status}"
                          + (f", order #{step.order_id}" if step.order_id else ""))

    @app.command("deadlines")
    def deadlines(ctx: typer.Context, at: str = typer.Option(None, "--at", help="As of (default now)."),
                  as_json: bool = typer.Option(False, "--json", help="JSON output.")):
        """Escalate every case whose deadline has passed."""
        from aupguard.cases import service as cases

        st = state(ctx)
        with st.store.session() as session:
            steps = cases.run_deadlines(session, st.settings, parse_time(at))
        if as_json:
            print_json(steps)
        else:
            for s in steps:
                console.print(f"case #{s.case_id}: {s.name} -> {s.status}")
            console.print(f"{len(steps)} step(s) taken")

    @app.command("merge")
    def merge(ctx: typer.Context, target: int = typer.Argument(..., help="Case to keep."),
              sources: list[int] = typer.Argument(..., help="Cases merged into it."),
              actor: str = typer.Option(None, help=ACTOR_HELP)):
        """Merge cases of one client into the target case."""
        from aupguard.cases import service as cases

        with state(ctx).store.session() as session:
            case = cases.merge(session, target, sources, _actor(actor))
        console.print(f"case #{case.id} now holds incidents {case.incident_ids}")

    @app.command("split")
    def split(ctx: typer.Context, case_id: int = typer.Argument(..., help="Case id."),
              incidents: list[int] = typer.Argument(..., help="Incident ids to move to a new case."),
              actor: str = typer.Option(None, help=ACTOR_HELP)):
        """Move some incidents of a case into a new case."""
        from aupguard.cases import service as cases

        with state(ctx).store.session() as session:
            new = cases.split(session, case_id, incidents, _actor(actor))
        console.print(f"new case #{new.id} with incidents {new.incident_ids}")

    @app.command("report")
    def report(ctx: typer.Context, case_id: int = typer.Argument(..., help="Case id."),
               authority: str = typer.Option(..., help="Authority reported to (e.g. NCMEC, police)."),
               report_id: str = typer.Option(..., "--report-id", help="The authority's reference."),
               at: str = typer.Option("now", "--at", help="When the report was made."),
               actor: str = typer.Option(None, help=ACTOR_HELP)):
        """Record the mandatory report of a case (CSAM); starts the legal hold period."""
        from aupguard.cases import service as cases

        st = state(ctx)
        with st.store.session() as session:
            r = cases.record_mandatory_report(session, case_id, authority, report_id,
                                              parse_time(at), _actor(actor), settings=st.settings)
        console.print(f"report {r.report_id} to {r.authority} recorded on case #{case_id}")

    @app.command("reply")
    def reply(ctx: typer.Context, path: Path = typer.Argument(..., help="Raw e-mail (.eml) file.",
                                                              exists=True, dir_okay=False)):
        """Thread a client's e-mail answer into its case (by its reply address)."""
        from aupguard.cases import service as cases

        st = state(ctx)
        with st.store.session() as session:
            case = cases.thread_reply(session, path.read_bytes(), settings=st.settings)
        if case is None:
            console.print("no case matches this message (no valid case reply address)")
            raise typer.Exit(1)
        console.print(f"threaded into case #{case.id} ({case.status})")

    @app.command("strikes")
    def strikes(ctx: typer.Context, client: str = typer.Argument(..., help="Client id."),
                as_json: bool = typer.Option(False, "--json", help="JSON output.")):
        """A client's repeat-infringer ledger (lawful.ip strikes)."""
        from aupguard.cases import service as cases

        st = state(ctx)
        with st.store.session() as session:
            summary = cases.strikes(session, client, settings=st.settings)
        if as_json:
            print_json(summary)
            return
        console.print(f"{client}: {summary.recommendation}", highlight=False)
        for e in summary.entries:
            console.print(f"  #{e.id} {e.at:%Y-%m-%d} case #{e.case_id} {e.reference}"
                          + (" (withdrawn)" if e.withdrawn else ""), markup=False)

    @app.command("orders")
    def orders(ctx: typer.Context, active: bool = typer.Option(False, "--active", help="Active only."),
               as_json: bool = typer.Option(False, "--json", help="JSON output.")):
        """Enforcement orders (restrictions, suspensions, terminations)."""
        from aupguard.cases import service as cases

        with state(ctx).store.session() as session:
            rows = cases.orders(session, active_only=active)
        if as_json:
            print_json(rows)
            return
        for o in rows:
            console.print(f"#{o.id} case #{o.case_id} {o.client_id} {o.kind} {o.action} {o.status}",
                          markup=False)

    @app.command("deliver")
    def deliver(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON output.")):
        """Send queued outbox mail through the configured SMTP relay (with retries)."""
        from aupguard.cases import service as cases

        st = state(ctx)
        with st.store.session() as session:
            rep = cases.deliver_outbox(session, st.settings)
        if as_json:
            print_json(rep)
            return
        if not rep.enabled:
            console.print(rep.message, markup=False, style="yellow")
            raise typer.Exit(1)
        console.print(f"sent {len(rep.sent)}, deferred {len(rep.deferred)}, failed {len(rep.failed)}")
        for mid, err in rep.errors.items():
            console.print(f"  outbox #{mid}: {err}", markup=False)

    @app.command("export")
    def export(ctx: typer.Context, case_id: int = typer.Argument(..., help="Case id."),
               out: Path = typer.Option(None, "--out", "-o", help="Archive path "
                                        "(default case-<id>.tar.gz)."),
               actor: str = typer.Option(None, help=ACTOR_HELP)):
        """Write the signed law-enforcement archive of a case."""
        from aupguard.cases import service as cases

        st = state(ctx)
        out = out or Path(f"case-{case_id}.tar.gz")
        with st.store.session() as session:
            path = cases.export_case(session, st.settings, case_id, out, actor=_actor(actor))
        console.print(f"wrote {path}; check it with `aupguard cases verify-export {path}`")

    @app.command("verify-export")
    def verify_export(ctx: typer.Context, path: Path = typer.Argument(..., exists=True, dir_okay=False,
                                                                      help="Archive to check."),
                      as_json: bool = typer.Option(False, "--json", help="JSON output.")):
        """Check an export archive's hashes and signature."""
        from aupguard.cases import service as cases

        check = cases.verify_export(path, state(ctx).settings)
        if as_json:
            print_json(check)
        elif check.ok:
            console.print(f"[green]ok[/]: {check.checked} members, {check.method} signature valid")
        else:
            for p in check.problems:
                console.print(f"[red]{p}[/]", highlight=False)
        if not check.ok:
            raise typer.Exit(1)

    @app.command("retention")
    def retention(ctx: typer.Context, at: str = typer.Option(None, "--at", help="As of (default now)."),
                  as_json: bool = typer.Option(False, "--json", help="JSON output.")):
        """Delete evidence past its retention period (never evidence under legal hold)."""
        from aupguard.cases import evidence

        st = state(ctx)
        with st.store.session() as session:
            rep = evidence.apply_retention(st.settings, session, parse_time(at))
        if as_json:
            print_json(rep)
        else:
            console.print(f"examined {rep.examined}: deleted {len(rep.deleted)}, kept under hold "
                          f"{len(rep.kept_held)}, kept (young) {rep.kept_young}")

    @app.command("evidence-check")
    def evidence_check(ctx: typer.Context,
                       as_json: bool = typer.Option(False, "--json", help="JSON output.")):
        """Re-hash every evidence blob; exit 1 if any no longer matches its hash."""
        from aupguard.cases import evidence

        rep = evidence.sweep(state(ctx).settings)
        if as_json:
            print_json(rep)
        elif rep.corrupt:
            for sha in rep.corrupt:
                console.print(f"[red]corrupt[/]: {sha}")
        else:
            console.print(f"[green]evidence intact[/]: {rep.checked} blobs")
        if rep.corrupt:
            raise typer.Exit(1)

    @audit_app.command("verify")
    def audit_verify(ctx: typer.Context,
                     as_json: bool = typer.Option(False, "--json", help="JSON output.")):
        """Walk the hash chain of the audit log; exit 1 at the first tampered row."""
        from aupguard.store.audit import verify

        with state(ctx).store.session() as session:
            result = verify(session)
        if as_json:
            print_json({"ok": result.ok, "checked": result.checked, "broken_at": result.broken_at,
                        "reason": result.reason})
        elif result.ok:
            console.print(f"[green]audit log intact[/]: {result.checked} entries")
        else:
            console.print(f"[red]audit log broken at entry {result.broken_at}[/]: {result.reason} "
                          f"({result.checked} entries checked)")
        if not result.ok:
            raise typer.Exit(1)

    @audit_app.command("log")
    def audit_log(ctx: typer.Context,
                  entity: str = typer.Option(None, help="Only this entity (case, client, ...)."),
                  entity_id: str = typer.Option(None, "--id", help="Only this entity id."),
                  limit: int = typer.Option(100, help="Newest N entries."),
                  as_json: bool = typer.Option(False, "--json", help="JSON output.")):
        """Read the audit log, newest last."""
        from sqlalchemy import select

        from aupguard.store.audit import AuditEntry

        with state(ctx).store.session() as session:
            query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
            if entity:
                query = query.where(AuditEntry.entity == entity)
            if entity_id:
                query = query.where(AuditEntry.entity_id == entity_id)
            rows = list(reversed(session.execute(query).scalars().all()))
            data = [{"id": r.id, "at": r.at, "actor": r.actor, "action": r.action,
                     "entity": r.entity, "entity_id": r.entity_id, "before": r.before,
                     "after": r.after, "note": r.note, "hash": r.hash} for r in rows]
        if as_json:
            print_json(data)
            return
        for r in data:
            console.print(f"{r['id']:>6} {r['at']:%Y-%m-%d %H:%M:%S} {r['actor']:<18} "
                          f"{r['action']:<22} {r['entity']}:{r['entity_id']} {r['note'][:80]}",
                          markup=False, highlight=False)
