"""`aupguard collect` and `aupguard flows ...` (query, top, import, prune)."""

from __future__ import annotations

import re
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from aupguard.cli_support import console, err_console, print_json, state
from aupguard.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

flows_app = typer.Typer(help="Query and import flows in the hourly Parquet store.",
                        no_args_is_help=True)

DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str | None, option: str = "--since",
                now: datetime | None = None) -> datetime | None:
    """'1h', '30m', '2d' (ago) or an ISO-8601 time (naive = UTC)."""
    if value is None or value == "":
        return None
    m = DURATION_RE.match(value)
    if m:
        now = now or datetime.now(UTC)
        return now - timedelta(**{UNITS[m.group(2)]: int(m.group(1))})
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r}: give a duration such as 30m, 1h, 2d or an ISO time "
            "such as 2026-10-01T12:00:00Z", param_hint=option) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return table.to_pylist()


def _print_table(table: pa.Table, title: str | None = None) -> None:
    from rich.table import Table

    out = Table(title=title, show_lines=False)
    for name in table.column_names:
        out.add_column(name, justify="right" if _numeric(table, name) else "left")
    for row in table.to_pylist():
        out.add_row(*("" if v is None else _fmt(v) for v in row.values()))
    console.print(out)


def _numeric(table: pa.Table, name: str) -> bool:
    import pyarrow as pa

    t = table.schema.field(name).type
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@flows_app.command("query")
def query_cmd(
    ctx: typer.Context,
    sql: str = typer.Argument(..., help='SQL over the `flows` view, e.g. "SELECT src_addr, '
                              'sum(bytes) FROM flows GROUP BY 1 ORDER BY 2 DESC LIMIT 10". '
                              "ip('192.0.2.1') turns text into an address for WHERE."),
    json_out: bool = typer.Option(False, "--json", help="Print rows as JSON."),
) -> None:
    """Run SQL (DuckDB) over the flow store; addresses are shown as text."""
    from aupguard.flows.query import run_query
    from aupguard.flows.store import open_duckdb

    con = open_duckdb(state(ctx).settings)
    table = run_query(con, sql)
    if json_out:
        print_json(_rows(table))
    else:
        _print_table(table)


@flows_app.command("top")
def top_cmd(
    ctx: typer.Context,
    by: str = typer.Option("src", "--by", help="src, dst, srcport, dstport, proto or exporter."),
    since: str = typer.Option("1h", "--since", help="Start: a duration ago (30m, 1h, 2d) or "
                              "an ISO time; empty for all."),
    until: str = typer.Option(None, "--until", help="End (exclusive), same forms as --since."),
    filter_: str = typer.Option(None, "--filter", help='SQL condition on flow columns, e.g. '
                                '"proto = 6 AND dst_port = 25".'),
    order: str = typer.Option("flows", "--order", help="Rank by flows, packets or bytes."),
    limit: int = typer.Option(10, "--limit", "-n", help="How many to show."),
    json_out: bool = typer.Option(False, "--json", help="Print rows as JSON."),
) -> None:
    """Top talkers like `nfdump -s srcip/flows`: flows, packets, bytes and their shares."""
    from aupguard.flows.query import top
    from aupguard.flows.store import open_duckdb

    start = parse_since(since, "--since")
    end = parse_since(until, "--until")
    con = open_duckdb(state(ctx).settings)
    table = top(con, by, start, end, filter_, order, limit)
    if json_out:
        print_json(_rows(table))
    else:
        span = f"since {start:%Y-%m-%d %H:%M:%S}Z" if start else "all time"
        _print_table(table, title=f"top {limit} by {by} ({order}), {span}")
        if table.num_rows == 0:
            err_console.print(f"no flows match in {state(ctx).settings.data_dir / 'flows'} "
                              "(try a longer --since, or check that `aupguard collect` runs)")


@flows_app.command("import")
def import_cmd(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="pcap or pcapng captures of export datagrams."),
    port: list[int] = typer.Option(None, "--port", "-p", help="UDP destination port(s) of the "
                                   "exports (default: 2055, 2056, 4739, 6343, 9995, 9996)."),
    any_port: bool = typer.Option(False, "--any-port", help="Feed every UDP datagram to the "
                                  "decoder whatever its port."),
    json_out: bool = typer.Option(False, "--json", help="Print the counters as JSON."),
) -> None:
    """Decode NetFlow/IPFIX/sFlow datagrams from captures into the flow store."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from aupguard.flows.pcap import DEFAULT_PORTS, import_pcap
    from aupguard.flows.store import FlowWriter

    settings = state(ctx).settings
    ports = None if any_port else (frozenset(port) if port else DEFAULT_PORTS)
    results = []
    writer = FlowWriter.from_settings(settings)
    for path in files:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TimeRemainingColumn(), console=err_console, disable=json_out,
                      transient=True) as bar:
            task = bar.add_task(f"importing {path.name}", total=path.stat().st_size)
            stats, dstats = import_pcap(path, settings, writer, ports,
                                        progress=lambda n, task=task: bar.advance(task, n))
        decoded = dstats.as_dict() if hasattr(dstats, "as_dict") else {}
        results.append({"file": str(path), "packets": stats.packets,
                        "datagrams": stats.datagrams, "flows": stats.flows,
                        "skipped": stats.skipped, "decode": decoded.get("total", decoded)})
    if json_out:
        print_json(results)
        return
    for r in results:
        errors = (r["decode"] or {}).get("errors") or {}
        console.print(f"{r['file']}: {r['datagrams']:,} export datagrams of {r['packets']:,} "
                      f"packets -> [bold]{r['flows']:,}[/] flows stored", highlight=False)
        for why, n in sorted(r["skipped"].items()):
            console.print(f"  skipped {n:,} packets: {why}", highlight=False)
        for kind, n in sorted(errors.items()):
            console.print(f"  [yellow]decode error[/] {kind}: {n:,}", highlight=False)
        pending = (r["decode"] or {}).get("pending") or 0
        if pending:
            console.print(f"  [yellow]{pending:,} records still wait for a template[/] "
                          "(the capture lacks it: import a capture that starts earlier)",
                          highlight=False)


@flows_app.command("prune")
def prune_cmd(
    ctx: typer.Context,
    days: int = typer.Option(None, "--days", help="Keep this many days (default: "
                             "[flows] retention_days)."),
    json_out: bool = typer.Option(False, "--json", help="List removed partitions as JSON."),
) -> None:
    """Delete hourly flow partitions older than the retention period."""
    from aupguard.flows.store import enforce_retention, flows_root

    settings = state(ctx).settings
    keep = settings.flows.retention_days if days is None else days
    removed = enforce_retention(flows_root(settings), keep)
    if json_out:
        print_json([str(p) for p in removed])
    else:
        console.print(f"removed {len(removed)} hourly partitions older than {keep} days"
                      if keep else "retention is 0 (keep forever): nothing removed")


def _alive(pid: Any) -> bool:
    import os

    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def _print_stats(stats: dict[str, Any]) -> None:
    from rich.table import Table

    age = time.time() - stats.get("time", 0)
    running = bool(stats.get("running")) and age < 3 * 60 and _alive(stats.get("pid"))
    console.print(f"collector pid {stats.get('pid')}: "
                  f"{'running' if running else 'not running'}, stats from {age:.0f} s ago; "
                  f"{stats.get('flows_out', 0):,} flows out, "
                  f"{stats['store']['records_written']:,} written, "
                  f"{stats['store']['buffered']:,} buffered, "
                  f"{stats.get('internal_errors', 0)} internal errors", highlight=False)
    socks = Table(title="sockets")
    for col in ("listen", "datagrams", "bytes", "rcvbuf granted", "kernel drops"):
        socks.add_column(col, justify="left" if col == "listen" else "right")
    for s in stats.get("sockets", []):
        socks.add_row(s["listen"], f"{s['datagrams']:,}", f"{s['bytes']:,}",
                      f"{s['rcvbuf_bytes']:,}", "?" if s["kernel_drops"] is None
                      else f"{s['kernel_drops']:,}")
    console.print(socks)
    ex = Table(title="exporters")
    for col in ("exporter", "datagrams", "records", "waiting for template", "sequence gaps",
                "decode errors"):
        ex.add_column(col, justify="left" if col in ("exporter", "decode errors") else "right")
    for name, c in stats.get("exporters", {}).items():
        errors = ", ".join(f"{k}={v}" for k, v in sorted(c.get("errors", {}).items())) or "-"
        ex.add_row(name, f"{c['datagrams']:,}", f"{c['records']:,}", f"{c['pending']:,}",
                   f"{c['sequence_gaps']:,}", errors)
    console.print(ex)


def collect_cmd(
    ctx: typer.Context,
    stats: bool = typer.Option(False, "--stats", help="Print the running collector's counters "
                               "(from the stats file it writes in the data directory) and exit."),
    json_out: bool = typer.Option(False, "--json", help="With --stats: print them as JSON."),
    listen: list[str] = typer.Option(None, "--listen", "-l", help="Address to bind (repeat; "
                                     "default: [flows] listen)."),
    port: int = typer.Option(None, "--port", help="NetFlow/IPFIX UDP port (default: [flows] "
                             "netflow_port)."),
    sflow_port: int = typer.Option(None, "--sflow-port", help="sFlow UDP port (0 = off)."),
    duration: float = typer.Option(None, "--duration", help="Stop after this many seconds "
                                   "(default: until Ctrl-C or SIGTERM)."),
) -> None:
    """Receive NetFlow v5/v9, IPFIX and sFlow on UDP and store the flows (or --stats)."""
    from aupguard.flows.collector import Collector, stats_path
    from aupguard.flows.metrics import read_stats_file

    app_state = state(ctx)
    settings = app_state.settings
    if stats:
        path = stats_path(settings)
        data = read_stats_file(path)
        if data is None:
            raise InputError(f"no collector stats at {path}: start `aupguard collect` "
                             "(with the same --config) first")
        if json_out:
            print_json(data)
        else:
            _print_stats(data)
        return
    updates: dict[str, Any] = {}
    if listen:
        updates["listen"] = list(listen)
    if port is not None:
        updates["netflow_port"] = port
    if sflow_port is not None:
        updates["sflow_port"] = sflow_port
    if updates:
        settings = settings.model_copy(update={"flows": settings.flows.model_copy(update=updates)})
    try:
        store = app_state.store
    except Exception as exc:  # enrichment is optional; collection is not
        err_console.print(f"note: state store unavailable ({exc}); flows are not enriched")
        store = None
    collector = Collector(settings, store=store)
    # A dedicated collector process: hand the GIL to the receive thread sooner than
    # every 5 ms, so a decoding batch cannot keep it from draining the socket.
    sys.setswitchinterval(0.001)
    done = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        done.set()

    old = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    collector.start()
    try:
        s = collector.stats()
        for sock in s["sockets"]:
            console.print(f"listening on udp {sock['listen']} (receive buffer "
                          f"{sock['rcvbuf_bytes']:,} bytes of {sock['rcvbuf_asked']:,} asked)",
                          highlight=False)
        if s["metrics_url"]:
            console.print(f"metrics: {s['metrics_url']}", highlight=False)
        console.print(f"storing flows under {settings.data_dir / 'flows'}; "
                      f"{'enriching' if s['enrichment'] else 'not enriching'}; Ctrl-C stops",
                      highlight=False)
        done.wait(duration)
    finally:
        collector.stop()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    s = collector.stats()
    total = sum(c["datagrams"] for c in s["exporters"].values())
    console.print(f"stopped: {total:,} datagrams, {s['flows_out']:,} flows, "
                  f"{s['store']['records_written']:,} stored", highlight=False)


def register(root: typer.Typer) -> None:
    root.command("collect")(collect_cmd)
    root.add_typer(flows_app, name="flows")
