"""The per-ASN CDR rule as SQL, written once in a portable subset of DuckDB's dialect.

DuckDB runs it over the Parquet flow store; ``to_spark`` transpiles it with
sqlglot for Spark SQL over the same layout. Rules for staying portable:
- constants that must be doubles are written ``CAST(x AS DOUBLE)`` (Spark reads
  ``300.0`` as DECIMAL);
- times are compared as epoch milliseconds, never as timestamp literals (the
  two engines disagree on literal time zones);
- the one function that does not map (DuckDB ``EPOCH_MS(ts)``, which sqlglot
  reads as its inverse) gets a per-dialect override in ``to_spark``.

Definition of the figure (also printed by the report):
1. A flow belongs to its ``client`` (enrichment: the source if it is a
   client, else the destination); its remote end is the destination for
   ``client_dir = 'out'`` and the source for ``'in'``.
2. Its bytes are spread over the ``bin_ms`` bins it overlaps, pro rata by
   time (a zero-length flow lands in the bin of its start).
3. Every AS on the remote end's AS path (transit ASes and the origin) is
   charged the flow's bytes in each bin. Enrichment stores paths with
   prepends collapsed (``routing.enrich.collapse_prepends``), so each AS
   counts once; deduplicating here instead (LIST_DISTINCT) cost 2 s per
   million flows, a third of the report.
4. Rate per bin = bytes * 8 / bin seconds, per direction ("in", "out") and
   summed ("all").
5. The percentile is nearest-rank over all N bins of the month, zero bins
   included, as in 95th-percentile billing: sorted descending, the K-th bin
   with K = N - ceil(p/100 * N) + 1 (for 31 days of 5-minute bins, N = 8928,
   the top 446 bins are dropped and the 447th is the figure). Fewer than K
   busy bins give 0. Exact: the busy bins of each client x ASN with at least
   K busy bins are collected and sorted (a list per group: a window
   ROW_NUMBER over all bins was 3x slower here; groups with fewer than K
   busy bins are answered 0 without sorting); the bins of one direction that carry only the other
   direction's traffic are zeros in its list, which is still exact.
"""

from __future__ import annotations

import math

REPORT_SQL = """
WITH f AS (
    SELECT
        client,
        client_dir,
        CASE WHEN client_dir = 'out' THEN dst_as_path ELSE src_as_path END AS path,
        CASE WHEN client_dir = 'out' THEN dst_asn ELSE src_asn END AS remote_asn,
        CAST(bytes AS DOUBLE) AS nbytes,
        EPOCH_MS("start") AS s,
        GREATEST(EPOCH_MS("end"), EPOCH_MS("start")) AS e
    FROM flows
    WHERE client IS NOT NULL
      AND client_dir IN ('in', 'out')
      AND bytes > 0
      {client_filter}
),
fb AS (
    SELECT *,
        CAST(FLOOR(CAST(s AS DOUBLE) / CAST({bin_ms} AS DOUBLE)) AS BIGINT) AS b0,
        CAST(FLOOR(CAST(GREATEST(e - 1, s) AS DOUBLE) / CAST({bin_ms} AS DOUBLE)) AS BIGINT) AS b1
    FROM f
    WHERE e >= {month_start_ms} AND s < {month_end_ms} AND path IS NOT NULL
),
spread AS (
    SELECT client, client_dir, path, remote_asn, b0 AS bin, nbytes AS nbytes
    FROM fb WHERE b0 = b1
    UNION ALL
    SELECT client, client_dir, path, remote_asn, bin,
        nbytes * CAST(LEAST(e, (bin + 1) * {bin_ms}) - GREATEST(s, bin * {bin_ms}) AS DOUBLE)
            / CAST(e - s AS DOUBLE) AS nbytes
    FROM (SELECT *, UNNEST(GENERATE_SERIES(b0, b1)) AS bin FROM fb WHERE b0 < b1) AS multi
),
per_as AS (
    SELECT client, asn, bin,
        CASE WHEN client_dir = 'in' THEN nbytes ELSE CAST(0 AS DOUBLE) END AS in_b,
        CASE WHEN client_dir = 'out' THEN nbytes ELSE CAST(0 AS DOUBLE) END AS out_b,
        CASE WHEN asn = remote_asn THEN nbytes ELSE CAST(0 AS DOUBLE) END AS origin_b
    FROM (SELECT *, UNNEST(path) AS asn FROM spread
          WHERE bin >= {first_bin} AND bin < {end_bin}) AS exploded
),
bins AS (
    SELECT client, asn, bin, SUM(in_b) AS in_b, SUM(out_b) AS out_b, SUM(origin_b) AS origin_b
    FROM per_as
    GROUP BY client, asn, bin
),
totals AS (
    SELECT client, asn,
        COUNT(*) AS busy_bins,
        MAX(in_b + out_b) AS peak_b,
        SUM(in_b + out_b) AS total_bytes,
        SUM(origin_b) AS origin_bytes
    FROM bins
    GROUP BY client, asn
),
tops AS (
    SELECT b.client, b.asn,
        LIST_SORT(LIST(b.in_b + b.out_b), 'DESC') AS all_sorted,
        LIST_SORT(LIST(b.in_b), 'DESC') AS in_sorted,
        LIST_SORT(LIST(b.out_b), 'DESC') AS out_sorted
    FROM bins AS b
    JOIN totals AS t ON b.client = t.client AND b.asn = t.asn
    WHERE t.busy_bins >= {rank}
    GROUP BY b.client, b.asn
)
SELECT
    t.client,
    t.asn,
    COALESCE(p.all_sorted[{rank}], CAST(0 AS DOUBLE)) * {to_bps} AS p_sum_bps,
    COALESCE(p.in_sorted[{rank}], CAST(0 AS DOUBLE)) * {to_bps} AS p_in_bps,
    COALESCE(p.out_sorted[{rank}], CAST(0 AS DOUBLE)) * {to_bps} AS p_out_bps,
    t.peak_b * {to_bps} AS peak_bps,
    t.total_bytes,
    t.origin_bytes,
    t.busy_bins
FROM totals AS t
LEFT JOIN tops AS p ON p.client = t.client AND p.asn = t.asn
ORDER BY t.client, t.asn
"""


def bins_in(month_start_ms: int, month_end_ms: int, bin_ms: int) -> tuple[int, int]:
    """(first bin number, end bin number exclusive) covering the month."""
    first = month_start_ms // bin_ms
    end = -(-month_end_ms // bin_ms)
    return first, end


def rank_for(n_bins: int, percentile: float) -> int:
    """Descending position of the nearest-rank percentile among n_bins values."""
    ascending = max(1, math.ceil(round(percentile / 100 * n_bins, 9)))
    return n_bins - ascending + 1


def render(month_start_ms: int, month_end_ms: int, bin_seconds: int, percentile: float,
           client_id: str | None = None) -> str:
    """The report SQL with its parameters filled in (all numeric; the client id is quoted)."""
    bin_ms = int(bin_seconds) * 1000
    first, end = bins_in(month_start_ms, month_end_ms, bin_ms)
    client_filter = ""
    if client_id is not None:
        client_filter = "AND client = '" + client_id.replace("'", "''") + "'"
    return REPORT_SQL.format(
        bin_ms=bin_ms, bin_seconds=int(bin_seconds), month_start_ms=int(month_start_ms),
        month_end_ms=int(month_end_ms), first_bin=first, end_bin=end,
        to_bps=f"CAST(8 AS DOUBLE) / CAST({int(bin_seconds)} AS DOUBLE)",
        rank=rank_for(end - first, percentile), client_filter=client_filter)


def to_spark(sql: str) -> str:
    """Transpile to Spark SQL, with the one per-dialect override (EPOCH_MS of a timestamp)."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")

    def fix(node: exp.Expression) -> exp.Expression:
        # DuckDB EPOCH_MS(timestamp) -> ms since epoch; sqlglot reads it as ms -> timestamp.
        if isinstance(node, exp.UnixToTime):
            return exp.Anonymous(this="UNIX_MILLIS", expressions=[node.this])
        return node

    return tree.transform(fix).sql(dialect="spark", pretty=True)
