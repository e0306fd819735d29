"""`aupguard reputation ...` (DNSBL monitor) and `aupguard probe ...` (SMTP relay/auth)."""

from __future__ import annotations

import typer

from aupguard.cli_support import console, parse_time, print_json, state

reputation_app = typer.Typer(help="Blocklist (DNSBL) monitoring of client address space.",
                             no_args_is_help=True)
probe_app = typer.Typer(help="Probe client mail servers for open relaying and missing AUTH.",
                        no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Machine-readable output.")


def _listing_dict(row) -> dict:
    d = row.as_dict()
    for k in ("listed_at", "last_seen_at", "delisted_at"):
        d[k] = d[k].isoformat() if d[k] else None
    return d


@reputation_app.command("check")
def check_cmd(ctx: typer.Context,
              client: str = typer.Option(None, "--client", help="Check only this client's addresses."),
              json_out: bool = JSON) -> None:
    """Check every client address against the configured DNSBL zones now.

    New listings open incidents (clause security.blacklisting); delistings end them.
    Timeouts are retried and reported as errors, never as 'not listed'.
    """
    from aupguard.reputation.monitor import check

    st = state(ctx)
    with console.status("querying DNSBL zones..."), st.store.session() as session:
        report = check(session, st.settings.reputation, client_id=client)
    if json_out:
        print_json(report)
        return
    console.print(f"checked {report.addresses:,} address(es), {report.queries:,} queries in "
                  f"{report.seconds:.1f} s: {report.listed} listed, "
                  f"{len(report.new_listings)} new, {len(report.delistings)} delisted, "
                  f"{report.errors} error(s)")
    for n in report.new_listings:
        console.print(f"  [red]listed[/] {n['address']} by {n['zone']} ({', '.join(n['meanings'])}) "
                      f"client {n['client_id'] or '-'} incident {n['incident_id']}")
    for d in report.delistings:
        console.print(f"  [green]delisted[/] {d['address']} by {d['zone']}")
    if report.errors:
        console.print(f"[yellow]{report.errors} answer(s) missing: these addresses keep their "
                      f"previous state; check the resolver ([reputation] resolver) and retry.[/]")
        for e in report.error_samples[:5]:
            console.print(f"  {e['zone']} {e['address']}: {e['error']}")
    if report.skipped_ipv6_prefixes:
        console.print(f"skipped IPv6 prefixes (cannot be enumerated): "
                      f"{', '.join(report.skipped_ipv6_prefixes)}")


@reputation_app.command("listings")
def listings_cmd(ctx: typer.Context,
                 client: str = typer.Option(None, "--client", help="Only this client's addresses."),
                 json_out: bool = JSON) -> None:
    """Addresses listed now, by zone, and since when."""
    from rich.table import Table

    from aupguard.reputation.monitor import current_listings

    with state(ctx).store.session() as session:
        rows = [_listing_dict(r) for r in current_listings(session, client)]
    if json_out:
        print_json(rows)
        return
    table = Table("address", "zone", "codes", "client", "listed since", "last seen", "incident")
    for r in rows:
        table.add_row(r["address"], r["zone"], ", ".join(f"{c} ({m})" for c, m in
                                                        zip(r["codes"], r["meanings"])),
                      r["client_id"] or "-", r["listed_at"], r["last_seen_at"], str(r["incident_id"]))
    console.print(table if rows else "no address of ours is listed")


@reputation_app.command("history")
def history_cmd(ctx: typer.Context, address: str = typer.Argument(..., help="IP address."),
                json_out: bool = JSON) -> None:
    """Every listing episode of one address (listed, delisted, by which zone)."""
    from aupguard.reputation.monitor import listing_history

    with state(ctx).store.session() as session:
        rows = [_listing_dict(r) for r in listing_history(session, address)]
    if json_out:
        print_json(rows)
        return
    if not rows:
        console.print(f"{address} has never been seen listed")
    for r in rows:
        console.print(f"{r['zone']}: listed {r['listed_at']} -> "
                      f"{r['delisted_at'] or 'still listed'} ({', '.join(r['codes'])})")


@reputation_app.command("runs")
def runs_cmd(ctx: typer.Context, json_out: bool = JSON) -> None:
    """Recent checks with their counts and errors."""
    from aupguard.reputation.monitor import recent_runs

    with state(ctx).store.session() as session:
        rows = [{c.name: getattr(r, c.name) for c in r.__table__.columns} for r in recent_runs(session)]
    if json_out:
        print_json(rows)
        return
    for r in rows:
        console.print(f"#{r['id']} {r['started_at']:%Y-%m-%d %H:%M} {r['addresses']:,} addr "
                      f"{r['queries']:,} q, {r['listed']} listed, {r['errors']} errors")


def _print_probe(results, json_out: bool) -> None:
    if json_out:
        print_json([r.as_dict() for r in results])
        return
    for r in results:
        colour = {"open_relay": "red", "closed": "green"}.get(r.verdict, "yellow")
        line = f"{r.address or r.host}:{r.port} [{colour}]{r.verdict}[/]"
        if r.skipped:
            line += f" (not probed again: {r.skipped})"
        line += (f" auth offered={r.auth_offered} required={r.auth_required}"
                 if not r.skipped else "")
        if r.accepted:
            line += f" accepted: {', '.join(r.accepted)}"
        if r.error:
            line += f" ({r.error})"
        if r.incident_ids:
            line += f" incidents {r.incident_ids}"
        console.print(line, highlight=False)


@probe_app.command("smtp")
def smtp_cmd(ctx: typer.Context,
             target: str = typer.Argument(..., help="HOST or HOST:PORT (no port: 25 and 587)."),
             allow_unassigned: bool = typer.Option(
                 False, "--allow-unassigned",
                 help="Lab use: allow a loopback target outside client assignments."),
             force: bool = typer.Option(False, "--force", help="Ignore the per-host rate limit."),
             at: str = typer.Option(None, "--at", help="Record the probe at this time (default now)."),
             json_out: bool = JSON) -> None:
    """Test a client mail server for open relaying and AUTH, stopping before DATA.

    Refuses addresses outside client assignments. Findings become incidents
    (mail.relay, mail.roaming-auth) with the SMTP transcript as evidence.
    """
    from aupguard.reputation.probe import probe

    st = state(ctx)
    with st.store.session() as session:
        results = probe(session, st.settings.reputation, target, allow_unassigned=allow_unassigned,
                        force=force, at=parse_time(at))
    _print_probe(results, json_out)


@probe_app.command("scheduled")
def scheduled_cmd(ctx: typer.Context, json_out: bool = JSON) -> None:
    """Probe every client's registered mail servers not probed within probe_interval_hours."""
    from aupguard.reputation.probe import probe_registered

    st = state(ctx)
    with st.store.session() as session:
        results = probe_registered(session, st.settings.reputation)
    _print_probe(results, json_out)
    if not results and not json_out:
        console.print("no registered mail servers (clients' mail_servers)")


@probe_app.command("list")
def list_cmd(ctx: typer.Context, json_out: bool = JSON) -> None:
    """Recent probe results."""
    from aupguard.reputation.probe import recent_probes

    with state(ctx).store.session() as session:
        rows = [{c.name: getattr(r, c.name) for c in r.__table__.columns if c.name != "transcript"}
                for r in recent_probes(session)]
    if json_out:
        print_json(rows)
        return
    for r in rows:
        console.print(f"{r['at']:%Y-%m-%d %H:%M} {r['host']}:{r['port']} {r['verdict']} "
                      f"client {r['client_id'] or '-'} auth offered={r['auth_offered']}")


def register(root: typer.Typer) -> None:
    root.add_typer(reputation_app, name="reputation")
    root.add_typer(probe_app, name="probe")
