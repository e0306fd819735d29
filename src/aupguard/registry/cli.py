"""`aupguard clients ...`: import, list, show and attribution."""

from __future__ import annotations

from pathlib import Path

import typer

from aupguard.cli_support import console, parse_time, print_json, state

clients_app = typer.Typer(help="Client registry: clients, resellers, address assignments, attribution.",
                          no_args_is_help=True)


@clients_app.command("import")
def import_cmd(ctx: typer.Context,
               file: Path = typer.Argument(..., help="CSV or JSON file (columns: see `aupguard clients import --help` or docs/registry.md)."),
               ) -> None:
    """Import clients and assignments from CSV/JSON in one transaction (all or nothing).

    CSV columns: client_id, name, parent_id, abuse_email, escalation_email,
    emails (;-separated), cdr_bps, contract_start, contract_end, mail_servers
    (;-separated), prefix, valid_from, valid_to, port_lo, port_hi.
    """
    from aupguard.registry.importer import import_file

    with state(ctx).store.session() as session:
        result = import_file(session, file)
    console.print(f"imported {result.clients} client(s) and {result.assignments} assignment(s) from {file}")


@clients_app.command("list")
def list_cmd(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List clients with their reseller, CDR and prefixes."""
    from rich.table import Table

    from aupguard.registry import list_assignments, list_clients

    with state(ctx).store.session() as session:
        clients = list_clients(session)
        assignments = list_assignments(session)
    by_client: dict[str, list] = {}
    for a in assignments:
        by_client.setdefault(a.client_id, []).append(a)
    if json_out:
        print_json([{**c.model_dump(mode="json"),
                     "assignments": [a.model_dump(mode="json") for a in by_client.get(c.id, [])]}
                    for c in clients])
        return
    table = Table("id", "name", "reseller", "CDR", "abuse contact", "prefixes")
    for c in clients:
        prefixes = ", ".join(
            a.prefix + (f" ports {a.port_lo}-{a.port_hi}" if a.port_lo is not None else "")
            for a in by_client.get(c.id, []))
        cdr = f"{c.cdr_bps / 1e6:,.0f} Mbit/s" if c.cdr_bps else "-"
        table.add_row(c.id, c.name, c.parent_id or "-", cdr, c.abuse_email or "-", prefixes or "-")
    console.print(table)


@clients_app.command("who")
def who_cmd(ctx: typer.Context,
            ip: str = typer.Argument(..., help="IPv4 or IPv6 address."),
            at: str = typer.Option(None, "--at", help="ISO-8601 time (default: now)."),
            port: int = typer.Option(None, "--port", min=0, max=65535,
                                     help="Source port, for addresses shared behind CGNAT."),
            json_out: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Who held IP at a time (and port)? Says when nobody or more than one client matches."""
    from aupguard import netaddr
    from aupguard.errors import InputError
    from aupguard.registry import load_index, reseller_chain

    when = parse_time(at) or parse_time("now")
    try:
        netaddr.parse_address(ip)
    except ValueError:
        raise InputError(f"{ip!r} is not an IPv4 or IPv6 address") from None
    with state(ctx).store.session() as session:
        answer = load_index(session).who(ip, when, port)
        chain = [c.id for c in reseller_chain(session, answer.client_id)] if answer.client_id else []
    if json_out:
        print_json({"address": ip, "at": when, "port": port, "status": answer.status,
                    "client_id": answer.client_id, "candidates": answer.candidates,
                    "prefix": answer.prefix, "reseller_chain": chain})
        raise typer.Exit({"match": 0, "ambiguous": 3}.get(answer.status, 4))
    if answer.status == "match":
        via = f" (reseller chain: {' -> '.join(chain)})" if len(chain) > 1 else ""
        console.print(f"{ip} at {when.isoformat()} -> [bold]{answer.client_id}[/] via {answer.prefix}{via}")
    elif answer.status == "ambiguous":
        console.print(f"[yellow]{ip} at {when.isoformat()} is ambiguous[/]: {', '.join(answer.candidates)} "
                      f"share {answer.prefix}" + ("" if port is not None else "; give --port for CGNAT addresses"))
        raise typer.Exit(3)
    else:
        console.print(f"[yellow]nobody held {ip} at {when.isoformat()}[/]")
        raise typer.Exit(4)


@clients_app.command("end")
def end_cmd(ctx: typer.Context,
            assignment_id: int = typer.Argument(..., help="Assignment id (see `clients list --json`)."),
            at: str = typer.Option(None, "--at", help="When the client stopped holding it (default: now)."),
            actor: str = typer.Option("cli", "--actor", help="Who ends it (audit log).")) -> None:
    """End an assignment: the address goes back to the next holder (or nobody) from then on.

    Earlier attributions stay as they were: the assignment history is kept.
    """
    from aupguard.registry import end_assignment

    when = parse_time(at) or parse_time("now")
    with state(ctx).store.session() as session:
        ended = end_assignment(session, assignment_id, when, actor)
    console.print(f"assignment {ended.id} ({ended.prefix} of {ended.client_id}) ends at {when.isoformat()}")


def register(root: typer.Typer) -> None:
    root.add_typer(clients_app, name="clients")
