"""`aupguard routes ...`: load MRT dumps, look up addresses, run the live BGP speaker."""

from __future__ import annotations

from pathlib import Path

import typer

from aupguard.cli_support import console, err_console, print_json, state

routes_app = typer.Typer(help="BGP routes: MRT dumps, live BGP via ExaBGP, lookups.", no_args_is_help=True)


@routes_app.command("load")
def load_cmd(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="MRT file (TABLE_DUMP_V2, TABLE_DUMP or BGP4MP), .gz/.bz2 allowed."),
    json_out: bool = typer.Option(False, "--json", help="Print the load summary as JSON."),
    accept_partial: bool = typer.Option(
        False, "--accept-partial", help="Install the routes read before a fault as the snapshot."),
) -> None:
    """Read an MRT RIB dump or update file and make it the RIB snapshot used for enrichment.

    A truncated file is reported with the byte offset of the fault and exits with status 1;
    the routes read before it are kept in rib.partial.arrow beside the snapshot (or become
    the snapshot with --accept-partial). Corrupt records with intact lengths are counted,
    reported with their offsets and skipped.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from aupguard.errors import InputError
    from aupguard.routing.mrt import read_mrt
    from aupguard.routing.rib import Rib, rib_path

    if not file.exists():
        raise InputError(f"{file} does not exist")
    settings = state(ctx).settings
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TimeRemainingColumn(), console=err_console, transient=True,
                  disable=json_out) as progress:
        task = progress.add_task(f"reading {file.name}", total=None)

        def tick(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = read_mrt(file, tick)
        progress.update(task, description="indexing")
        rib = Rib.from_mrt(result, str(file))
        rib.index  # build once now: a broken RIB fails here, not in the collector
        target = rib_path(settings)
        if result.fatal and not accept_partial:
            target = target.with_name("rib.partial.arrow")
        rib.save(target)
    v4 = int((rib.table.column("family").to_numpy() == 4).sum())
    summary = {
        "file": str(file), "snapshot": str(target), "records": result.records,
        "prefixes": len(rib), "ipv4": v4, "ipv6": len(rib) - v4, "skipped": result.skipped,
        "errors": result.error_count, "error_samples": [str(e) for e in result.errors[:10]],
        "fault": str(result.fatal) if result.fatal else None,
    }
    if json_out:
        print_json(summary)
    else:
        console.print(f"loaded {len(rib):,} prefixes ({v4:,} IPv4, {len(rib) - v4:,} IPv6) from "
                      f"{result.records:,} MRT records into {target}")
        for what, count in sorted(result.skipped.items()):
            console.print(f"  skipped {count:,} x {what}")
        for e in result.errors[:10]:
            err_console.print(f"[yellow]warning:[/] {file}: {e}", highlight=False)
        if result.error_count > 10:
            err_console.print(f"[yellow]warning:[/] ... {result.error_count - 10} more corrupt records")
    if result.fatal:
        where = ("installed as the snapshot" if accept_partial else
                 f"kept in {target} (the snapshot in use is unchanged; --accept-partial installs them)")
        err_console.print(f"[bold red]error:[/] {file}: {result.fatal}. The {len(rib):,} prefixes "
                          f"read before the fault were {where}; fetch the file again for the rest.",
                          highlight=False)
        raise typer.Exit(1)


@routes_app.command("lookup")
def lookup_cmd(
    ctx: typer.Context,
    address: list[str] = typer.Argument(..., help="One or more IPv4/IPv6 addresses."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Longest-prefix match in the RIB snapshot: prefix, origin AS, AS path, communities, next hop."""
    from aupguard.routing.rib import Rib, rib_path

    rib = Rib.load(rib_path(state(ctx).settings))
    answers = [{"address": a, "route": rib.lookup(a)} for a in address]
    if json_out:
        print_json(answers)
        return
    from rich.table import Table

    table = Table("address", "prefix", "origin AS", "AS path", "communities", "next hop")
    for ans in answers:
        r = ans["route"]
        if r is None:
            table.add_row(ans["address"], "[dim]no route[/]", "-", "-", "-", "-")
        else:
            table.add_row(ans["address"], r["prefix"], str(r["origin_as"] or "? (AS_SET)"),
                          r["as_path_text"] or " ".join(map(str, r["as_path"])),
                          " ".join(r["communities"]) or "-", r["next_hop"] or "-")
    console.print(table)


@routes_app.command("stats")
def stats_cmd(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """What the RIB snapshot holds: prefix counts per family and length, its source."""
    import numpy as np

    from aupguard.routing.rib import Rib, rib_path

    path = rib_path(state(ctx).settings)
    rib = Rib.load(path)
    fam = rib.table.column("family").to_numpy()
    plen = rib.table.column("plen").to_numpy()
    by_len = {f"IPv{f} /{int(L)}": int(c) for f in (4, 6)
              for L, c in zip(*np.unique(plen[fam == f], return_counts=True))}
    info = {"snapshot": str(path), "prefixes": len(rib), "ipv4": int((fam == 4).sum()),
            "ipv6": int((fam == 6).sum()), "by_length": by_len, **rib.metadata}
    if json_out:
        print_json(info)
        return
    for k, v in info.items():
        if k != "by_length":
            console.print(f"{k}: {v}")
    console.print("by length: " + ", ".join(f"{k}: {v:,}" for k, v in by_len.items()))


@routes_app.command("speaker")
def speaker_cmd(ctx: typer.Context) -> None:
    """Run aupguard's BGP speaker (ExaBGP) in the foreground with the neighbours of the
    routing section, writing the learnt RIB to the snapshot every snapshot_seconds."""
    from aupguard.errors import ConfigError
    from aupguard.routing.rib import rib_path
    from aupguard.routing.speaker import BgpSpeaker

    settings = state(ctx).settings
    if not settings.routing.neighbours:
        raise ConfigError("no BGP neighbours configured: add [[routing.neighbours]] entries "
                          "(address, peer_as) to aupguard.toml")
    speaker = BgpSpeaker(settings).start()
    console.print(f"BGP speaker on {settings.routing.local_address}:{settings.routing.listen_port} "
                  f"AS{settings.routing.local_as}, {len(settings.routing.neighbours)} neighbour(s); Ctrl-C stops")
    try:
        speaker.run_forever(rib_path(settings))
    except KeyboardInterrupt:
        pass
    finally:
        speaker.stop()


def register(root: typer.Typer) -> None:
    root.add_typer(routes_app, name="routes")
