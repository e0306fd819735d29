"""`aupguard detect`, `incidents`, `mitigations` and `feeds`."""

from __future__ import annotations

from pathlib import Path

import typer

from aupguard.cli_support import console, parse_time, print_json, state

JSON_HELP = "Machine-readable output."


def _incident_brief(row) -> dict:
    return {k: row.as_dict()[k] for k in (
        "id", "status", "rule", "clause_id", "client_id", "offender", "victim", "first_seen",
        "last_seen", "peak", "observations", "case_id")}


def register(root: typer.Typer) -> None:
    detect = typer.Typer(help="Run the detection rules over stored flows; list the rules.",
                         no_args_is_help=False, invoke_without_command=True)
    incidents = typer.Typer(help="Incidents found by detection, intake and monitors.",
                            no_args_is_help=True)
    mitigations = typer.Typer(help="BGP blackhole / FlowSpec mitigations of floods.",
                              no_args_is_help=True)
    feeds = typer.Typer(help="Threat feeds (C2 addresses) used by the c2_contact rule.",
                        no_args_is_help=True)
    root.add_typer(detect, name="detect")
    root.add_typer(incidents, name="incidents")
    root.add_typer(mitigations, name="mitigations")
    root.add_typer(feeds, name="feeds")

    @detect.callback()
    def detect_history(
        ctx: typer.Context,
        since: str = typer.Option(None, "--since", help="Start (ISO-8601, UTC if no zone)."),
        until: str = typer.Option("now", "--until", help="End (ISO-8601 or 'now')."),
        rules: str = typer.Option(None, "--rules", help="Comma-separated rule names (default: all)."),
        step: float = typer.Option(None, "--step", help="Evaluation step in seconds (default: [detect] interval_s)."),
        json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
    ) -> None:
        """Replay the Parquet flow store between --since and --until through the rules."""
        if ctx.invoked_subcommand is not None:
            return
        if since is None:
            console.print("give --since (and optionally --until), or a subcommand; see --help")
            raise typer.Exit(2)
        from rich.progress import Progress

        from aupguard.detect.detector import run_history
        from aupguard.incidents import get

        app = state(ctx)
        start, end = parse_time(since, "--since"), parse_time(until, "--until")
        names = [r.strip() for r in rules.split(",") if r.strip()] if rules else None
        with Progress(console=console, transient=True, disable=json_out) as progress:
            task = progress.add_task("replaying flows", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            detector = run_history(app.settings, app.store, start, end, names, step, advance)
        with app.store.session() as session:
            rows = [get(session, i) for i in sorted(detector.stats.incidents)]
            found = [_incident_brief(r) for r in rows if r is not None]
        if json_out:
            print_json({"flows": detector.engine.rows_in, "evaluations": detector.stats.ticks,
                        "incidents": found})
            return
        console.print(f"{detector.engine.rows_in} flows, {detector.stats.ticks} evaluations, "
                      f"{len(found)} incidents")
        _print_incidents(found)

    @detect.command("rules")
    def rules_cmd(json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
        """List the rules, their clause, window and default thresholds (with sources)."""
        from aupguard.detect.rules import ALL_RULES

        data = [{"name": r.name, "clause": r.clause_id, "window_s": r.window_s,
                 "thresholds": r.defaults, "condition": r.condition, "source": r.source,
                 "description": r.description} for r in ALL_RULES.values()]
        if json_out:
            print_json(data)
            return
        from rich.table import Table

        table = Table("rule", "clause", "window", "thresholds", "description")
        for d in data:
            table.add_row(d["name"], d["clause"], f"{d['window_s']:g} s",
                          ", ".join(f"{k}={v:g}" for k, v in d["thresholds"].items()),
                          d["description"])
        console.print(table)

    @detect.command("sql")
    def sql_cmd(rule: str = typer.Argument(..., help="Rule name."),
                dialect: str = typer.Option("duckdb", help="Target dialect (duckdb, spark, clickhouse...).")) -> None:
        """Print a rule's SQL (transpiled with sqlglot for another engine)."""
        from aupguard.detect.rules import ALL_RULES
        from aupguard.errors import InputError

        if rule not in ALL_RULES:
            raise InputError(f"unknown rule {rule!r}; `aupguard detect rules` lists them")
        import sqlglot

        r = ALL_RULES[rule]
        sql = r.query(0, r.window_s * 1000, r.defaults)
        typer.echo(sqlglot.transpile(sql, read="duckdb", write=dialect, pretty=True)[0])

    @incidents.command("list")
    def incidents_list(
        ctx: typer.Context,
        status: str = typer.Option(None, "--status", help="active, ended or review."),
        client: str = typer.Option(None, "--client", help="Client id."),
        clause: str = typer.Option(None, "--clause", help="Clause id, e.g. security.flood."),
        limit: int = typer.Option(200, "--limit", help="At most this many (newest first)."),
        json_out: bool = typer.Option(False, "--json", help=JSON_HELP),
    ) -> None:
        """List incidents, newest first."""
        from aupguard.incidents import list_incidents

        with state(ctx).store.session() as session:
            rows = [_incident_brief(r) for r in list_incidents(
                session, status=status, client_id=client, clause_id=clause, limit=limit)]
        if json_out:
            print_json(rows)
        else:
            _print_incidents(rows)

    @incidents.command("show")
    def incidents_show(ctx: typer.Context, incident_id: int = typer.Argument(..., help="Incident id."),
                       json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
        """One incident with its figures, thresholds and sample flows."""
        from aupguard.errors import InputError
        from aupguard.incidents import get

        with state(ctx).store.session() as session:
            row = get(session, incident_id)
            if row is None:
                raise InputError(f"no incident {incident_id} (`aupguard incidents list` shows them)")
            data = row.as_dict()
        if json_out:
            print_json(data)
            return
        from rich.markup import escape

        for key in ("id", "status", "source", "rule", "clause_id", "policy_version", "client_id",
                    "offender", "victim", "first_seen", "last_seen", "peak", "observations",
                    "case_id", "summary"):
            console.print(f"[bold]{key}[/]: {escape(str(data[key]))}")
        console.print("[bold]metrics[/]:")
        print_json(data["metrics"])
        console.print(f"[bold]evidence[/] ({len(data['evidence'])} records):")
        print_json(data["evidence"])

    @mitigations.command("list")
    def mitigations_list(ctx: typer.Context,
                         status: str = typer.Option(None, "--status", help="pending, approved, announced, withdrawn, rejected."),
                         json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
        """List mitigations, newest first."""
        from aupguard.detect.mitigate import list_mitigations

        with state(ctx).store.session() as session:
            rows = [m.as_dict() for m in list_mitigations(session, status)]
        if json_out:
            print_json(rows)
            return
        from rich.table import Table

        table = Table("id", "status", "prefix", "kind", "rule", "client", "incident", "last attack", "route")
        for m in rows:
            table.add_row(str(m["id"]), m["status"], m["prefix"], m["kind"], m["rule"],
                          m["client_id"] or "-", str(m["incident_id"]), str(m["last_attack_at"]),
                          m["route"])
        console.print(table)

    @mitigations.command("approve")
    def mitigations_approve(ctx: typer.Context, mitigation_id: int = typer.Argument(..., help="Mitigation id."),
                            actor: str = typer.Option("cli", "--actor", help="Who approves (audit log).")) -> None:
        """Approve a pending mitigation; the running detector announces it on its next tick."""
        from aupguard.detect.mitigate import approve

        with state(ctx).store.session() as session:
            row = approve(session, mitigation_id, actor)
            console.print(f"mitigation {row.id} ({row.prefix}) approved")

    @mitigations.command("withdraw")
    def mitigations_withdraw(ctx: typer.Context, mitigation_id: int = typer.Argument(..., help="Mitigation id."),
                             reason: str = typer.Option("", "--reason", help="Why (audit log)."),
                             actor: str = typer.Option("cli", "--actor", help="Who withdraws (audit log).")) -> None:
        """Withdraw a mitigation (announced ones are withdrawn by the running detector)."""
        from aupguard.detect.mitigate import request_withdraw

        with state(ctx).store.session() as session:
            row = request_withdraw(session, mitigation_id, actor, reason)
            console.print(f"mitigation {row.id} ({row.prefix}): {row.status}")

    @feeds.command("load")
    def feeds_load(ctx: typer.Context, path: Path = typer.Argument(..., help="Feed file."),  # noqa: B008
                   fmt: str = typer.Option(..., "--format", help="plain, drop or feodo."),
                   name: str = typer.Option(None, "--name", help="Feed name (default: file name)."),
                   json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
        """Load (replace) one threat feed."""
        from aupguard.detect import feeds as feed_store

        with state(ctx).store.session() as session:
            feed, result = feed_store.load(session, path, fmt, name)
        out = {"feed": feed, "entries": len(dict(result.entries)), "bad_lines": result.bad,
               "errors": result.errors}
        if json_out:
            print_json(out)
            return
        console.print(f"feed [bold]{feed}[/]: {out['entries']} entries loaded, {result.bad} bad lines")
        for err in result.errors:
            console.print(f"  [yellow]{err}[/]", highlight=False, markup=False)

    @feeds.command("list")
    def feeds_list(ctx: typer.Context, json_out: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
        """Loaded feeds and their entry counts."""
        from collections import Counter

        from aupguard.detect import feeds as feed_store

        with state(ctx).store.session() as session:
            rows = feed_store.entries(session)
            counts = Counter((r.feed, r.format) for r in rows)
        data = [{"feed": f, "format": fmt, "entries": n} for (f, fmt), n in sorted(counts.items())]
        if json_out:
            print_json(data)
            return
        for d in data:
            console.print(f"{d['feed']} ({d['format']}): {d['entries']} entries")


def _print_incidents(rows: list[dict]) -> None:
    from rich.table import Table

    table = Table("id", "status", "rule", "clause", "client", "offender", "victim", "last seen", "peak")
    for r in rows:
        table.add_row(str(r["id"]), r["status"], r["rule"], r["clause_id"], r["client_id"] or "-",
                      r["offender"], r["victim"], str(r["last_seen"])[:19], f"{r['peak']:g}")
    console.print(table)
