"""The windowed rule engine: DuckDB over Arrow, the same code live and over history.

Batches are prepared once (``detect.prepare``) and kept in two windows:

- the *short* window (the longest flood window, seconds) keeps every row;
- the *long* window (scans, spam, brute force, C2: minutes) keeps only rows
  matching one of the long rules' prefilters (probes, tcp/25, logins, feed
  hits...), capped at ``max_window_rows`` — memory stays bounded at any rate.

``evaluate(until_ms)`` runs every rule over its window ending at ``until_ms``
(event time: flow end timestamps) and returns the detections that pass the
thresholds of their client / host group.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aupguard import netaddr
from aupguard.detect.config import DetectSettings
from aupguard.detect.prepare import PREPARED_SCHEMA, Context, prepare
from aupguard.detect.rules import ALL_RULES, STANDARD_COLUMNS, Rule
from aupguard.detect.rules.base import AMP_PORT_LIST
from aupguard.detect.thresholds import Thresholds
from aupguard.errors import ConfigError

SHORT_LIMIT_S = 10.0
#: A host is hot (its flows kept for the flood rules) once it reaches this share of the
#: loosest flood threshold within one evaluation interval.
HOT_FRACTION = 0.1
EVIDENCE_ROWS = 5
ADDRESS_FIELDS = ("offender", "victim")


@dataclass
class Detection:
    rule: Rule
    key: str
    client: str | None
    role: str
    offender: str
    victim: str
    port: int | None
    first_ms: int
    last_ms: int
    window_ms: tuple[int, int]
    metrics: dict[str, float]
    thresholds: dict[str, float]
    host_group: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def headline(self) -> float:
        return float(self.metrics.get(self.rule.headline, 0.0))


def select_rules(settings: DetectSettings, names: list[str] | None = None) -> list[Rule]:
    wanted = names or settings.rules or list(ALL_RULES)
    unknown = [n for n in wanted + settings.disabled_rules if n not in ALL_RULES]
    if unknown:
        raise ConfigError(f"unknown rule(s) {', '.join(unknown)}; rules are "
                          f"{', '.join(ALL_RULES)}")
    return [ALL_RULES[n] for n in wanted if n not in settings.disabled_rules]


def _fmt(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return netaddr.format_address(bytes(value))
    return "" if value is None else str(value)


class Window:
    """Prepared batches covering the last `span_ms` of event time, oldest first."""

    def __init__(self, span_ms: int, max_rows: int | None = None):
        self.span_ms = span_ms
        self.max_rows = max_rows
        self.batches: deque[tuple[int, pa.Table]] = deque()
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        newest = pc.max(table.column("end_ms")).as_py()
        self.batches.append((newest, table))
        self.rows += table.num_rows

    def evict(self, until_ms: int) -> None:
        horizon = until_ms - self.span_ms
        while self.batches and (self.batches[0][0] <= horizon or (
                self.max_rows is not None and self.rows > self.max_rows and len(self.batches) > 1)):
            _, dropped = self.batches.popleft()
            self.rows -= dropped.num_rows

    def table(self) -> pa.Table:
        if not self.batches:
            return PREPARED_SCHEMA.empty_table()
        return pa.concat_tables([t for _, t in self.batches])


class Engine:
    def __init__(self, settings: DetectSettings, ctx: Context | None = None,
                 rules: list[str] | None = None):
        self.settings = settings
        self.ctx = ctx or Context()
        self.rules = select_rules(settings, rules)
        self.thresholds = Thresholds(settings, ALL_RULES)
        self.short_rules = [r for r in self.rules if r.window_s <= SHORT_LIMIT_S]
        self.long_rules = [r for r in self.rules if r.window_s > SHORT_LIMIT_S]
        for rule in self.long_rules:
            if not rule.prefilter:  # pragma: no cover - catalogue invariant
                raise ValueError(f"rule {rule.name} has a long window but no prefilter")
        short_span = max((r.window_s for r in self.short_rules), default=0.0)
        long_span = max((r.window_s for r in self.long_rules), default=0.0)
        self.short = Window(int(short_span * 1000) + 1000)
        self.long = Window(int(long_span * 1000) + 1000, settings.max_window_rows)
        self._long_filter = " OR ".join(f"({r.prefilter})" for r in self.long_rules)
        self.con = duckdb.connect(":memory:", config={"threads": 1})
        self.lock = threading.Lock()
        self.watermark = 0
        self.rows_in = 0
        self.pending: list[pa.Table] = []        # prepared, not yet in a window
        self.pending_raw: list[pa.Table] = []    # as received
        self.hot_dst: dict[int, int] = {}
        self.hot_src: dict[int, int] = {}
        self.interval_s = settings.interval_s
        self.long_every_ms = int(settings.long_interval_s * 1000)
        self._long_run_ms = -(2**62)

    # -- input ----------------------------------------------------------------
    def ingest(self, table: pa.Table, prepared: bool = False) -> None:
        """Add one batch (raw flows, or already prepared). Batches are only queued here;
        they are prepared and sorted into the windows once per evaluation, so the
        per-batch cost is nil whatever the collector's batch size."""
        if table.num_rows == 0:
            return
        column = table.column("end_ms" if prepared else "end")
        if pa.types.is_timestamp(column.type):
            column = pc.cast(pc.cast(column, pa.timestamp("ms", tz="UTC")), pa.int64())
        newest_ms = pc.max(column).as_py()
        with self.lock:
            self.rows_in += table.num_rows
            self.watermark = max(self.watermark, int(newest_ms))
            (self.pending if prepared else self.pending_raw).append(table)

    def hot_limits(self) -> tuple[dict[str, float], float]:
        """Per-interval packet/byte/flow counts that make a host hot (a fraction of the
        loosest flood thresholds), and the reflector packet count."""
        floods = [r for r in self.short_rules if "pps" in r.defaults and "flows_per_s" in r.defaults]
        limits = {"packets": float("inf"), "bytes": float("inf"), "flows": float("inf")}
        for rule in floods:
            th = self.thresholds.loosest(rule)
            limits["packets"] = min(limits["packets"], th["pps"])
            limits["bytes"] = min(limits["bytes"], th["mbps"] * 1e6 / 8)
            limits["flows"] = min(limits["flows"], th["flows_per_s"])
        reflect = [self.thresholds.loosest(r)["pps"] for r in self.short_rules
                   if r.name == "reflection_reflector"]
        return limits, min(reflect, default=float("inf"))

    def _sort_pending(self) -> None:
        """Move rows that arrived since the last evaluation into the windows.

        Short window: only rows of *hot* hosts (FastNetMon-style per-host counters:
        a destination reaching HOT_FRACTION of the loosest flood threshold in the
        interval, a UDP service-port source likewise for reflectors) plus broadcast
        destinations. Long window: rows matching a long rule's prefilter.
        """
        if self.pending_raw:
            raw = pa.concat_tables(self.pending_raw, promote_options="default")
            self.pending_raw = []
            self.pending.append(prepare(raw, self.ctx))
        if not self.pending:
            return
        batch = pa.concat_tables(self.pending)
        self.pending = []
        span_s = max(self.interval_s, 1e-3)
        self.con.register("incoming", batch)
        try:
            if self.short_rules:
                limits, reflect_pps = self.hot_limits()
                f = HOT_FRACTION * span_s
                having = " OR ".join(
                    f"{agg} >= {limits[name] * f}" for name, agg in
                    (("packets", "SUM(packets)"), ("bytes", "SUM(bytes)"), ("flows", "COUNT(*)"))
                    if limits[name] != float("inf"))
                parts = []
                if having:
                    parts.append("SELECT 0 AS side, dst_key AS key FROM incoming "
                                 f"GROUP BY dst_key HAVING {having}")
                if reflect_pps != float("inf"):
                    parts.append("SELECT 1 AS side, src_key AS key FROM incoming "
                                 f"WHERE proto = 17 AND src_port IN ({AMP_PORT_LIST}) "
                                 f"GROUP BY src_key HAVING SUM(packets) >= {reflect_pps * f}")
                hot_sql = " UNION ALL ".join(parts) or "SELECT 0 AS side, 0 AS key WHERE false"
                found = self.con.sql(hot_sql).fetchnumpy()
                side = np.asarray(found["side"])
                keys = np.asarray(found["key"], dtype=np.int64)
                hot, hot_src = keys[side == 0], keys[side == 1]
                expiry = self.watermark + self.short.span_ms
                for key in np.asarray(hot, dtype=np.int64).tolist():
                    self.hot_dst[key] = expiry
                for key in np.asarray(hot_src, dtype=np.int64).tolist():
                    self.hot_src[key] = expiry
                proto = batch.column("proto").to_numpy()
                keep = np.asarray(batch.column("dst_bcast").to_numpy(zero_copy_only=False)) & (
                    (proto == 1) | (proto == 58))
                if self.hot_dst:
                    keep = keep | np.isin(batch.column("dst_key").to_numpy(),
                                          np.fromiter(self.hot_dst, np.int64))
                if self.hot_src:
                    keep = keep | np.isin(batch.column("src_key").to_numpy(),
                                          np.fromiter(self.hot_src, np.int64))
                if keep.any():
                    self.short.add(batch.filter(pa.array(keep)))
            if self.long_rules:
                kept = self.con.sql(
                    f"SELECT * FROM incoming WHERE {self._long_filter}").to_arrow_table()
                self.long.add(kept.cast(PREPARED_SCHEMA))
        finally:
            self.con.unregister("incoming")
        for hot_set in (self.hot_dst, self.hot_src):
            for key in [k for k, t in hot_set.items() if t < self.watermark]:
                del hot_set[key]

    # -- evaluation -------------------------------------------------------------
    def evaluate(self, until_ms: int | None = None,
                 evidence_for: set[str] | None = None) -> list[Detection]:
        """Run every rule over its window ending at `until_ms` (default: the watermark).

        `evidence_for`: keys already evidenced (sample flows are attached only once).
        """
        with self.lock:
            self._sort_pending()
            until = int(until_ms if until_ms is not None else self.watermark)
            self.short.evict(until)
            self.long.evict(until)
            out: list[Detection] = []
            run_long = until - self._long_run_ms >= self.long_every_ms
            if run_long:
                self._long_run_ms = until
            for rules, window in ((self.short_rules, self.short),
                                  (self.long_rules if run_long else [], self.long)):
                if not rules or not window.batches:
                    continue
                table = window.table()
                self.con.register("flows", table)
                try:
                    out.extend(self._run_window(rules, table, until, evidence_for))
                finally:
                    self.con.unregister("flows")
            return out

    def _run_window(self, rules: list[Rule], table: pa.Table, until: int,
                    evidence_for: set[str] | None) -> list[Detection]:
        """All rules of one window in one UNION ALL query (one bind/plan/run per tick,
        DuckDB's per-statement overhead dominates on small windows), then thresholds."""
        metrics = sorted({m for r in rules for m in r.metrics})
        branches = []
        for rule in rules:
            since = until - int(rule.window_s * 1000)
            cols = ", ".join(f"CAST({m} AS DOUBLE) AS {m}" if m in rule.metrics
                             else f"CAST(NULL AS DOUBLE) AS {m}" for m in metrics)
            branches.append(
                f"SELECT '{rule.name}' AS rule_name, offender, victim, client, role, "
                f"CAST(port AS INTEGER) AS port, CAST(first_ms AS BIGINT) AS first_ms, "
                f"CAST(last_ms AS BIGINT) AS last_ms, {cols} "
                f"FROM ({rule.query(since, until, self.thresholds.loosest(rule))}) AS r")
        result = self.con.sql(" UNION ALL ".join(branches)).to_arrow_table()
        if result.num_rows == 0:
            return []
        out: list[Detection] = []
        names = result.column("rule_name").to_pylist()
        by_rule = {r.name: r for r in rules}
        for name in dict.fromkeys(names):
            rule = by_rule[name]
            mask = pc.equal(result.column("rule_name"), name)
            part = result.filter(mask).select(list(STANDARD_COLUMNS) + list(rule.metrics))
            out.extend(self._detections(rule, part, until, table, evidence_for))
        return out

    def _detections(self, rule: Rule, result: pa.Table, until: int, table: pa.Table,
                    evidence_for: set[str] | None) -> list[Detection]:
        since = until - int(rule.window_s * 1000)
        rows = result.to_pylist()
        subjects = [r.get(rule.subject) if rule.subject in ADDRESS_FIELDS else None for r in rows]
        groups = self.thresholds.groups_of(subjects)
        resolved = [self.thresholds.resolve(rule, r["client"], g) for r, g in zip(rows, groups)]
        if self.thresholds.has_overrides(rule):
            keep = self._exact(rule, result, resolved)
        else:
            keep = list(range(len(rows)))
        detections = []
        for i in keep:
            row = rows[i]
            key = rule.name + ":" + ":".join(f"{k}={_fmt(row[k])}" for k in rule.key)
            det = Detection(
                rule=rule, key=key, client=row["client"], role=row["role"],
                offender=_fmt(row["offender"]), victim=_fmt(row["victim"]),
                port=row["port"], first_ms=int(row["first_ms"]), last_ms=int(row["last_ms"]),
                window_ms=(since, until),
                metrics={m: round(float(row[m]), 3) for m in rule.metrics if row.get(m) is not None},
                thresholds=resolved[i], host_group=groups[i], raw=row)
            if evidence_for is None or key not in evidence_for:
                det.evidence = self._evidence(rule, table, row, since)
            detections.append(det)
        return detections

    def _exact(self, rule: Rule, result: pa.Table, resolved: list[dict[str, float]]) -> list[int]:
        """Apply each candidate's own thresholds (client / host group) in SQL."""
        cand = result.append_column("row_no", pa.array(np.arange(result.num_rows), pa.int64()))
        for name in rule.defaults:
            cand = cand.append_column(f"th_{name}", pa.array([r[name] for r in resolved], pa.float64()))
        self.con.register("candidates", cand)
        try:
            kept = self.con.execute(f"SELECT row_no FROM candidates WHERE "
                                    f"{rule.condition_by_column()}").fetchall()
        finally:
            self.con.unregister("candidates")
        return sorted(r[0] for r in kept)

    def _evidence(self, rule: Rule, table: pa.Table, row: dict, since: int) -> list[dict]:
        mask = pc.greater(table.column("end_ms"), since)
        for column, field_name in rule.evidence:
            value = row.get(field_name)
            if value is None:
                continue
            mask = pc.and_(mask, pc.equal(table.column(column), pa.scalar(value, pa.binary(16))))
        if rule.name == "spoofing" and row.get("client"):
            mask = pc.and_(mask, pc.equal(table.column("if_client"), row["client"]))
        sample = table.filter(mask).slice(0, EVIDENCE_ROWS).to_pylist()
        return [flow_record(r) for r in sample]


def flow_record(row: dict) -> dict[str, Any]:
    """A prepared flow row as evidence (readable addresses, no internal columns)."""
    return {
        "start_ms": row["start_ms"], "end_ms": row["end_ms"],
        "src": _fmt(row["src"]), "dst": _fmt(row["dst"]),
        "src_port": row["src_port"], "dst_port": row["dst_port"], "proto": row["proto"],
        "tcp_flags": row["tcp_flags"], "packets": row["packets"], "bytes": row["bytes"],
        "sampling_rate": row["sampling_rate"],
    }
