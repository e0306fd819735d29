"""`aupguard optin ...`, `aupguard suppress ...`, `aupguard traps ...`."""

from __future__ import annotations

from pathlib import Path

import typer

from aupguard.cli_support import console, parse_time, print_json, state

optin_app = typer.Typer(help="Verified opt-in records of bulk senders, records requests.",
                        no_args_is_help=True)
suppress_app = typer.Typer(help="Suppression lists: who must not be mailed; list screening.",
                           no_args_is_help=True)
traps_app = typer.Typer(help="Spam traps and the purchased-list indicator.", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Machine-readable output.")


def _iso(row: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


# -- opt-in ---------------------------------------------------------------------------------

@optin_app.command("import")
def optin_import(ctx: typer.Context,
                 file: Path = typer.Argument(..., help="CSV or JSON with columns address, "
                                             "subscribed_at, source, confirmed_at, confirm_from, "
                                             "confirm_headers."),
                 client: str = typer.Option(..., "--client", help="Client the records belong to."),
                 json_out: bool = JSON) -> None:
    """Import a client's opt-in records; each is checked verified / unverified / forged."""
    from aupguard.bulkmail.optin import import_file

    st = state(ctx)
    with console.status(f"importing {file}..."), st.store.session() as session:
        result = import_file(session, client, file, header_cap=st.settings.bulkmail.max_header_bytes,
                             actor="cli")
    if json_out:
        print_json(result)
        return
    console.print(f"imported {result.imported} record(s): {result.verified} verified, "
                  f"{result.unverified} unverified, {result.forged} forged; "
                  f"{result.rejected} rejected")
    for err in result.errors:
        console.print(f"  [yellow]{err}[/]", highlight=False)


@optin_app.command("list")
def optin_list(ctx: typer.Context, client: str = typer.Argument(..., help="Client id."),
               address: str = typer.Option(None, "--address", help="Only this address."),
               status: str = typer.Option(None, "--status", help="verified, unverified or forged."),
               json_out: bool = JSON) -> None:
    """A client's opt-in records with their verification status."""
    from aupguard.bulkmail.optin import records_for

    with state(ctx).store.session() as session:
        rows = [_iso(r.as_dict()) for r in records_for(session, client, address, status)]
    if json_out:
        print_json(rows)
        return
    for r in rows:
        console.print(f"{r['address']} subscribed {r['subscribed_at']} confirmed "
                      f"{r['confirmed_at'] or '-'} [{r['status']}] {r['reason']}", highlight=False)
    if not rows:
        console.print("no records")


@optin_app.command("request")
def optin_request(ctx: typer.Context, client: str = typer.Argument(..., help="Client id."),
                  address: str = typer.Option(..., "--address", help="Address whose records are requested."),
                  days: int = typer.Option(None, "--days", min=1, max=365,
                                           help="Deadline in days (default [bulkmail] optin_request_days)."),
                  ref: str = typer.Option("", "--ref", help="Case or complaint reference, e.g. case:12."),
                  json_out: bool = JSON) -> None:
    """Ask a client to produce the opt-in records of an address by a deadline."""
    from aupguard.bulkmail.optin import request_records

    st = state(ctx)
    with st.store.session() as session:
        req = request_records(session, client, address, days=days or st.settings.bulkmail.optin_request_days,
                              ref=ref, actor="cli")
        row = _iso(req.as_dict())
    if json_out:
        print_json(row)
        return
    console.print(f"request #{row['id']}: {client} must produce records for {row['address']} "
                  f"by {row['deadline']} (notice queued: {'yes' if row['outbox_id'] else 'no contact'})")


@optin_app.command("answer")
def optin_answer(ctx: typer.Context, request_id: int = typer.Argument(..., help="Request number."),
                 note: str = typer.Option("", "--note", help="What the client said or sent."),
                 json_out: bool = JSON) -> None:
    """Record the client's answer (import its records first); not verified -> finding."""
    from aupguard.bulkmail.optin import answer_request

    with state(ctx).store.session() as session:
        row = _iso(answer_request(session, request_id, note=note, actor="cli").as_dict())
    if json_out:
        print_json(row)
        return
    console.print(f"request #{request_id} answered: records {row['outcome']}"
                  + (f" (incident {row['incident_id']})" if row["incident_id"] else ""))


@optin_app.command("requests")
def optin_requests(ctx: typer.Context,
                   client: str = typer.Option(None, "--client", help="Only this client."),
                   status: str = typer.Option(None, "--status", help="open, answered or escalated."),
                   json_out: bool = JSON) -> None:
    """Records requests and their state."""
    from aupguard.bulkmail.optin import list_requests

    with state(ctx).store.session() as session:
        rows = [_iso(r.as_dict()) for r in list_requests(session, client, status)]
    if json_out:
        print_json(rows)
        return
    for r in rows:
        console.print(f"#{r['id']} {r['client_id']} {r['address']} due {r['deadline']} "
                      f"[{r['status']}] {r['outcome']}", highlight=False)


@optin_app.command("escalate")
def optin_escalate(ctx: typer.Context,
                   now: str = typer.Option(None, "--now", help="Evaluate deadlines at this time."),
                   json_out: bool = JSON) -> None:
    """Escalate open requests past their deadline (run on a schedule)."""
    from aupguard.bulkmail.optin import escalate_overdue

    with state(ctx).store.session() as session:
        rows = [_iso(r.as_dict()) for r in escalate_overdue(session, parse_time(now, "--now"), actor="cli")]
    if json_out:
        print_json(rows)
        return
    console.print(f"{len(rows)} request(s) escalated")
    for r in rows:
        console.print(f"  #{r['id']} {r['client_id']} {r['address']} incident {r['incident_id']}")


@optin_app.command("produce")
def optin_produce(ctx: typer.Context, client: str = typer.Argument(..., help="Client id."),
                  out: Path = typer.Option(..., "--out", help="Output file (.json or .csv)."),
                  address: str = typer.Option(None, "--address", help="Only this address.")) -> None:
    """Write a client's opt-in records (of one address, or all) to a file."""
    from aupguard.bulkmail.optin import produce

    with state(ctx).store.session() as session:
        count = produce(session, client, out, address, actor="cli")
    console.print(f"wrote {count} record(s) to {out}")


# -- suppression ----------------------------------------------------------------------------

@suppress_app.command("add")
def suppress_add(ctx: typer.Context,
                 entry: str = typer.Argument(..., help="Address, or @domain for a whole domain."),
                 client: str = typer.Option(None, "--client", help="Client list (default: global)."),
                 reason: str = typer.Option("", "--reason", help="Why (kept with the entry)."),
                 source: str = typer.Option("manual", "--source", help="manual, unsubscribe, fbl, complaint.")) -> None:
    """Suppress one address or domain, globally or for one client."""
    from aupguard.bulkmail.suppress import add_one

    st = state(ctx)
    with st.store.session() as session:
        added = add_one(session, entry, client_id=client, source=source, reason=reason,
                        hashed=st.settings.bulkmail.hash_suppressions, actor="cli")
    console.print("added" if added else "already suppressed (earlier entry kept)")


@suppress_app.command("import")
def suppress_import(ctx: typer.Context,
                    file: Path = typer.Argument(..., help="One entry per line, or CSV with an email column, or JSON list."),
                    client: str = typer.Option(None, "--client", help="Client list (default: global)."),
                    source: str = typer.Option("import", "--source", help="import, unsubscribe, fbl, manual."),
                    json_out: bool = JSON) -> None:
    """Add a file of addresses/domains to a suppression list."""
    from aupguard.bulkmail.suppress import add_suppressions, read_address_file

    st = state(ctx)
    values = read_address_file(file)
    with console.status(f"adding {len(values):,} entries..."), st.store.session() as session:
        result = add_suppressions(session, values, client_id=client, source=source,
                                  hashed=st.settings.bulkmail.hash_suppressions, actor="cli")
    if json_out:
        print_json(result)
        return
    console.print(f"added {result.added:,}, already present {result.duplicates:,}, "
                  f"invalid {result.invalid:,}")
    for bad in result.invalid_samples[:5]:
        console.print(f"  invalid: {bad!r}", highlight=False)


@suppress_app.command("list")
def suppress_list(ctx: typer.Context,
                  client: str = typer.Option(None, "--client", help="Only this client's list ('*' = global)."),
                  limit: int = typer.Option(100, "--limit", min=1, help="At most this many entries."),
                  json_out: bool = JSON) -> None:
    """Newest suppression entries (hashed ones show their hash)."""
    from aupguard.bulkmail.suppress import list_entries

    with state(ctx).store.session() as session:
        rows = [_iso({c.name: getattr(r, c.name) for c in r.__table__.columns})
                for r in list_entries(session, client, limit)]
    if json_out:
        print_json(rows)
        return
    for r in rows:
        scope = "global" if r["scope"] == "*" else r["scope"]
        console.print(f"{r['kind']:7} {r['value']} {scope} {r['source']} since {r['suppressed_at']}",
                      highlight=False)


@suppress_app.command("screen")
def suppress_screen(ctx: typer.Context,
                    file: Path = typer.Argument(..., help="Mailing list: one address per line, CSV with an email column, or JSON."),
                    client: str = typer.Option(None, "--client", help="Also apply this client's own list."),
                    out: Path = typer.Option(None, "--out", help="Write the addresses that MAY be mailed here."),
                    json_out: bool = JSON) -> None:
    """Which addresses of a list must not be mailed (global + client suppressions)."""
    import time

    from aupguard.bulkmail.suppress import read_address_file, screen

    started = time.monotonic()
    addresses = read_address_file(file)
    st = state(ctx)
    with console.status(f"screening {len(addresses):,} addresses..."), st.store.session() as session:
        result = screen(session, addresses, client, cache_dir=st.settings.data_dir / "cache")
    seconds = time.monotonic() - started
    if out is not None:
        out.write_text("\n".join(result.mailable.to_pylist()) + ("\n" if len(result.mailable) else ""),
                       encoding="utf-8")
    if json_out:
        print_json({"total": result.total, "invalid": result.invalid,
                    "suppressed_count": result.suppressed.num_rows, "mailable": len(result.mailable),
                    "suppressed": result.suppressed_rows(), "invalid_samples": result.invalid_samples})
        return
    console.print(f"{result.total:,} address(es): {result.suppressed.num_rows:,} must not be mailed, "
                  f"{len(result.mailable):,} may be, {result.invalid:,} invalid ({seconds:.1f} s)")
    for r in result.suppressed_rows(limit=50):
        scope = "global" if r["scope"] == "*" else f"client {r['scope']}"
        console.print(f"  {r['address']} ({r['kind']}, {scope}, {r['source']} since {r['since']})",
                      highlight=False)
    if result.suppressed.num_rows > 50:
        console.print(f"  ... {result.suppressed.num_rows - 50:,} more (use --json)")


# -- traps ----------------------------------------------------------------------------------

@traps_app.command("list")
def traps_list(ctx: typer.Context, json_out: bool = JSON) -> None:
    """Configured trap addresses and domains."""
    cfg = state(ctx).settings.bulkmail
    data = {"addresses": cfg.trap_addresses, "domains": cfg.trap_domains}
    if json_out:
        print_json(data)
        return
    console.print(f"trap addresses: {', '.join(cfg.trap_addresses) or '-'}\n"
                  f"trap domains: {', '.join(cfg.trap_domains) or '-'}")


@traps_app.command("check")
def traps_check(ctx: typer.Context, address: str = typer.Argument(..., help="E-mail address.")) -> None:
    """Is this address a spam trap? (exit code 0 yes, 1 no)"""
    from aupguard.bulkmail.traps import is_trap

    hit = is_trap(address, state(ctx).settings.bulkmail)
    console.print("trap" if hit else "not a trap")
    raise typer.Exit(0 if hit else 1)


@traps_app.command("record")
def traps_record(ctx: typer.Context, address: str = typer.Argument(..., help="Trap address hit."),
                 client: str = typer.Option(None, "--client", help="Client the mail came from."),
                 at: str = typer.Option(None, "--at", help="When the trap was hit (default now)."),
                 source: str = typer.Option("manual", "--source", help="arf, spamcop, manual..."),
                 offender: str = typer.Option("", "--offender", help="Sending IP or host.")) -> None:
    """Record a trap hit by hand (intake records ARF/SpamCop hits itself)."""
    from aupguard.bulkmail.traps import record_trap_hit

    st = state(ctx)
    with st.store.session() as session:
        hit = record_trap_hit(session, address, client, parse_time(at) or parse_time("now"), source,
                              offender, settings=st.settings.bulkmail, actor="cli")
        console.print(f"trap hit #{hit.id} recorded" + (f", incident {hit.incident_id}" if hit.incident_id else ""))


@traps_app.command("hits")
def traps_hits(ctx: typer.Context, client: str = typer.Option(None, "--client", help="Only this client."),
               json_out: bool = JSON) -> None:
    """Trap hits and the purchased-list indicators they raised."""
    from aupguard.bulkmail.traps import hits, indicators

    with state(ctx).store.session() as session:
        rows = [_iso({c.name: getattr(h, c.name) for c in h.__table__.columns}) for h in hits(session, client)]
        inds = [_iso({c.name: getattr(i, c.name) for c in i.__table__.columns}) for i in indicators(session, client)]
    if json_out:
        print_json({"indicators": inds, "hits": rows})
        return
    for i in inds:
        console.print(f"{i['client_id']}: {i['indicator']} x{i['count']} ({i['first_at']} .. {i['last_at']})")
    for h in rows:
        console.print(f"  {h['at']} {h['trap_address']} client {h['client_id'] or '-'} via {h['source']}",
                      highlight=False)


def register(root: typer.Typer) -> None:
    root.add_typer(optin_app, name="optin")
    root.add_typer(suppress_app, name="suppress")
    root.add_typer(traps_app, name="traps")
