"""The monthly per-ASN CDR report: which ASNs void the latency/loss guarantee per client.

``asn_report`` runs the SQL of :mod:`aupguard.accounting.sql` with DuckDB over
the month's Parquet files and compares each client x ASN percentile with
``threshold_share`` x the client's CDR from the registry. ``render_chart``
draws per-ASN percentile bars against the limit line (matplotlib, Agg).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from aupguard.accounting import sql as report_sql
from aupguard.errors import AupguardError, InputError

if TYPE_CHECKING:  # pragma: no cover
    from aupguard.config import Settings
    from aupguard.store.db import Store

# Flows are stored by the hour of their start: a flow that started up to this long
# before the month can still carry bytes into its first bins.
LOOKBACK = timedelta(days=1)


class AsnRow(BaseModel):
    client_id: str
    client_name: str = ""
    asn: int
    role: Literal["origin", "transit", "origin+transit"]
    p_bps: float = Field(description="The figure compared with the limit (per direction_mode).")
    p_in_bps: float
    p_out_bps: float
    p_sum_bps: float
    peak_bps: float
    total_bytes: float
    busy_bins: int
    cdr_bps: int | None
    limit_bps: float | None
    share_of_cdr: float | None
    over: bool
    verdict: str


class ClientSummary(BaseModel):
    client_id: str
    client_name: str
    cdr_bps: int | None
    limit_bps: float | None
    asns: int
    void_asns: list[int]


class AsnReport(BaseModel):
    month: str
    client_filter: str | None
    bin_seconds: int
    percentile: float
    direction_mode: str
    threshold_share: float
    n_bins: int
    rank: int
    definition: list[str]
    rows: list[AsnRow]
    clients: list[ClientSummary]
    notes: list[str] = Field(default_factory=list)
    files: int = 0
    seconds: float = 0.0

    @property
    def void(self) -> list[AsnRow]:
        return [r for r in self.rows if r.over]


def month_bounds(month: str) -> tuple[datetime, datetime]:
    try:
        start = datetime.strptime(month.strip(), "%Y-%m").replace(tzinfo=timezone.utc)
    except ValueError:
        raise InputError(f"--month {month!r}: expected YYYY-MM, e.g. 2026-10") from None
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def definition_lines(settings: Settings, n_bins: int, rank: int) -> list[str]:
    acc = settings.accounting
    mode = ("in + out summed per bin, then the percentile" if acc.direction_mode == "sum"
            else "the larger of the inbound and outbound percentiles")
    return [
        f"bin_seconds = {acc.bin_seconds}: a flow's bytes are spread pro rata over the bins it spans",
        f"percentile = {acc.percentile:g}: nearest rank over all {n_bins} bins of the month, zero bins"
        f" included (sorted descending, bin #{rank} is the figure; the top {rank - 1} are dropped)",
        f"direction_mode = {acc.direction_mode}: {mode}",
        f"threshold_share = {acc.threshold_share:g}: the guarantee toward an ASN is void when the figure"
        f" exceeds {acc.threshold_share:.0%} of the client's CDR",
        "ASNs: every distinct AS on the remote end's AS path (transit and origin), both directions",
    ]


def _files(settings: Settings, start: datetime, end: datetime) -> list[Path]:
    from aupguard.flows.store import files_between, flows_root

    return files_between(flows_root(settings), start - LOOKBACK, end)


def run_sql(files: list[Path], sql_text: str, threads: int | None = None,
            memory_limit: str | None = None, temp_dir: Path | None = None):
    """Run the report SQL with DuckDB over the given Parquet files (an Arrow table)."""
    import duckdb

    con = duckdb.connect()
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            con.execute("SET memory_limit = ?", [memory_limit])
        if temp_dir is not None:
            temp_dir.mkdir(parents=True, exist_ok=True)
            con.execute("SET temp_directory = ?", [str(temp_dir)])
        con.execute("SET preserve_insertion_order = false")
        listing = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
        con.execute(f"CREATE VIEW flows AS SELECT * FROM read_parquet([{listing}], union_by_name = true)")
        columns = {row[0] for row in con.execute("DESCRIBE flows").fetchall()}
        if "client" not in columns:
            return None
        rel = con.sql(sql_text)
        fetch = getattr(rel, "to_arrow_table", None) or rel.arrow  # renamed in DuckDB 1.4
        return fetch()
    finally:
        con.close()


def asn_report(settings: Settings, store: Store | None, month: str,
               client_id: str | None = None, threads: int | None = None) -> AsnReport:
    """The report for a calendar month (``YYYY-MM``), optionally for one client."""
    acc = settings.accounting
    t0 = time.perf_counter()
    start, end = month_bounds(month)
    bin_ms = acc.bin_seconds * 1000
    first, end_bin = report_sql.bins_in(_ms(start), _ms(end), bin_ms)
    n_bins = end_bin - first
    rank = report_sql.rank_for(n_bins, acc.percentile)
    notes: list[str] = []

    clients: dict[str, tuple[str, int | None]] = {}
    if store is not None:
        from aupguard.registry import list_clients

        with store.session() as session:
            clients = {c.id: (c.name, c.cdr_bps) for c in list_clients(session)}
    if client_id is not None and store is not None and client_id not in clients:
        raise InputError(f"no client {client_id!r} in the registry (see `aupguard clients list`)")

    files = _files(settings, start, end)
    table = None
    if files:
        text = report_sql.render(_ms(start), _ms(end), acc.bin_seconds, acc.percentile, client_id)
        import duckdb

        try:
            table = run_sql(files, text, threads or acc.threads or None, acc.memory_limit,
                            Path(settings.data_dir) / "tmp" / "accounting")
        except duckdb.OutOfMemoryException as exc:
            raise AupguardError(
                f"the {month} report needs more memory than accounting.memory_limit ="
                f" {acc.memory_limit!r} ({str(exc).splitlines()[0]}); raise it in aupguard.toml,"
                " or run the SQL on Spark (aupguard.accounting.sql.to_spark)") from None
        if table is None:
            notes.append("the flows of this month carry no enrichment (client, AS path) columns:"
                         " load a RIB (`aupguard routes load`) and collect with enrichment on")
    else:
        notes.append(f"no flows stored for {month} under {Path(settings.data_dir) / 'flows'}")

    rows: list[AsnRow] = []
    for r in (table.to_pylist() if table is not None else []):
        name, cdr = clients.get(r["client"], ("", None))
        p = r["p_sum_bps"] if acc.direction_mode == "sum" else max(r["p_in_bps"], r["p_out_bps"])
        limit = acc.threshold_share * cdr if cdr else None
        over = limit is not None and p > limit
        total, origin = r["total_bytes"] or 0.0, r["origin_bytes"] or 0.0
        role = ("origin" if total and origin >= total * (1 - 1e-9)
                else "transit" if origin <= 0 else "origin+transit")
        if limit is None:
            verdict = "no CDR on file"
        elif over:
            verdict = f"no performance guarantee toward AS{r['asn']} this month"
        else:
            verdict = "within limit"
        rows.append(AsnRow(
            client_id=r["client"], client_name=name, asn=int(r["asn"]), role=role, p_bps=p,
            p_in_bps=r["p_in_bps"], p_out_bps=r["p_out_bps"], p_sum_bps=r["p_sum_bps"],
            peak_bps=r["peak_bps"], total_bytes=total, busy_bins=int(r["busy_bins"]),
            cdr_bps=cdr, limit_bps=limit, share_of_cdr=(p / cdr if cdr else None),
            over=over, verdict=verdict))
    rows.sort(key=lambda x: (x.client_id, -x.p_bps, x.asn))
    by_client: dict[str, list[AsnRow]] = {}
    for row in rows:
        by_client.setdefault(row.client_id, []).append(row)
    summaries = []
    for cid, mine in sorted(by_client.items()):
        name, cdr = clients.get(cid, ("", None))
        if cdr is None:
            notes.append(f"client {cid} has no CDR in the registry: its ASNs are listed without a verdict")
        summaries.append(ClientSummary(
            client_id=cid, client_name=name, cdr_bps=cdr,
            limit_bps=acc.threshold_share * cdr if cdr else None, asns=len(mine),
            void_asns=[r.asn for r in mine if r.over]))
    return AsnReport(
        month=f"{start:%Y-%m}", client_filter=client_id, bin_seconds=acc.bin_seconds,
        percentile=acc.percentile, direction_mode=acc.direction_mode,
        threshold_share=acc.threshold_share, n_bins=n_bins, rank=rank,
        definition=definition_lines(settings, n_bins, rank), rows=rows, clients=summaries,
        notes=notes, files=len(files), seconds=round(time.perf_counter() - t0, 3))


def format_bps(value: float | None) -> str:
    if value is None:
        return "-"
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if value >= scale:
            return f"{value / scale:,.2f} {unit}"
    return f"{value:,.0f} bit/s"


def render_chart(report: AsnReport, path: Path | str, top: int = 15) -> Path:
    """Per-ASN percentile bars against the limit line, one panel per client (PNG or SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise InputError(f"--chart {path}: use a .png or .svg file name")
    panels = report.clients[:8] or []
    height = max(1, len(panels))
    fig, axes = plt.subplots(height, 1, figsize=(10, 3.2 * height), squeeze=False)
    if not panels:
        axes[0][0].text(0.5, 0.5, f"no client traffic in {report.month}", ha="center", va="center")
        axes[0][0].set_axis_off()
    for ax, summary in zip(axes[:, 0], panels):
        mine = [r for r in report.rows if r.client_id == summary.client_id][:top]
        labels = [f"AS{r.asn}" for r in mine]
        values = [r.p_bps / 1e6 for r in mine]
        colors = ["#c0392b" if r.over else "#2e86c1" if r.limit_bps else "#95a5a6" for r in mine]
        ax.bar(labels, values, color=colors)
        if summary.limit_bps:
            ax.axhline(summary.limit_bps / 1e6, color="#7f8c8d", linestyle="--",
                       label=f"{report.threshold_share:.0%} of CDR = {format_bps(summary.limit_bps)}")
            ax.legend(loc="upper right", fontsize=8)
        else:
            ax.text(0.99, 0.95, "no CDR on file: no limit", transform=ax.transAxes, ha="right",
                    va="top", fontsize=8, color="#7f8c8d")
        ax.set_ylabel(f"p{report.percentile:g} Mbit/s")
        title = summary.client_id + (f" ({summary.client_name})" if summary.client_name else "")
        ax.set_title(f"{title} - {report.month}", fontsize=10)
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
