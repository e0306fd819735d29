"""`aupguard report asn`: the monthly per-ASN CDR report (the AUP's 10% clause)."""

from __future__ import annotations

from pathlib import Path

import typer

from aupguard.cli_support import console, print_json, state

report_app = typer.Typer(help="Reports over the flow store.", no_args_is_help=True)

CSV_COLUMNS = ["client_id", "client_name", "asn", "role", "p_bps", "p_in_bps", "p_out_bps",
               "p_sum_bps", "peak_bps", "total_bytes", "busy_bins", "cdr_bps", "limit_bps",
               "share_of_cdr", "over", "verdict"]


@report_app.command("asn")
def asn_cmd(
    ctx: typer.Context,
    month: str = typer.Option(..., "--month", "-m", help="Calendar month, YYYY-MM (UTC)."),
    client: str = typer.Option(None, "--client", help="Only this client id."),
    json_out: bool = typer.Option(False, "--json", help="The whole report as JSON."),
    csv_out: bool = typer.Option(False, "--csv", help="One CSV row per client x ASN."),
    chart: Path = typer.Option(None, "--chart", help="Also draw per-ASN bars vs the limit (.png or .svg)."),
    top: int = typer.Option(None, "--top", help="ASNs per client in the table (default: accounting.top in the config)."),
) -> None:
    """Per client and ASN (origin and transit, both directions): the month's percentile
    rate against the share of the client's CDR, and where the guarantee is void."""
    from aupguard.accounting.report import asn_report, format_bps, render_chart

    st = state(ctx)
    report = asn_report(st.settings, st.store, month, client)
    if chart is not None:
        render_chart(report, chart)
    if json_out:
        print_json(report.model_dump(mode="json") | {"void": [r.model_dump(mode="json") for r in report.void]})
        return
    if csv_out:
        import csv
        import sys

        writer = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for r in report.rows:
            writer.writerow(r.model_dump())
        return
    from rich.table import Table

    console.print(f"[bold]Per-ASN CDR report for {report.month}[/]"
                  + (f" (client {report.client_filter})" if report.client_filter else ""))
    for line in report.definition:
        console.print(f"  [dim]{line}[/]", highlight=False)
    limit_top = top or st.settings.accounting.top
    pct = f"p{report.percentile:g}"
    for summary in report.clients:
        rows = [r for r in report.rows if r.client_id == summary.client_id]
        title = (f"{summary.client_id} {summary.client_name} - CDR {format_bps(summary.cdr_bps)},"
                 f" limit {format_bps(summary.limit_bps)}")
        table = Table("ASN", "role", f"{pct} in", f"{pct} out", f"{pct} in+out", "peak",
                      "% of CDR", "verdict", title=title, title_justify="left")
        for r in rows[:limit_top]:
            share = f"{r.share_of_cdr:.1%}" if r.share_of_cdr is not None else "-"
            verdict = "[bold red]VOID[/]" if r.over else ("within" if r.limit_bps else "no CDR")
            table.add_row(f"AS{r.asn}", r.role, format_bps(r.p_in_bps), format_bps(r.p_out_bps),
                          format_bps(r.p_sum_bps), format_bps(r.peak_bps), share, verdict)
        console.print(table)
        if len(rows) > limit_top:
            console.print(f"  ... {len(rows) - limit_top} more ASNs (--top, --json or --csv for all)")
    for r in report.void:
        console.print(f"[bold red]{r.client_id}:[/] no performance guarantee toward AS{r.asn} this month "
                      f"({pct} {format_bps(r.p_bps)} > {format_bps(r.limit_bps)})", highlight=False)
    if not report.void and report.rows:
        console.print("[green]No ASN exceeds the limit this month.[/]")
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    if chart is not None:
        console.print(f"chart written to {chart}")


def register(root: typer.Typer) -> None:
    root.add_typer(report_app, name="report")
