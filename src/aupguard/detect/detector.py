"""From detections to incidents: the live detector and the history replay.

`LiveDetector.process(table, now_ms)` is what the collector calls per batch
(``collector.add_listener``); it evaluates the rules at most every
``interval_s``. Windows run on event time (flow end timestamps); quiet
incidents end on an event-time clock that keeps advancing with the wall
clock when no flows arrive. History mode replays the Parquet store through
the very same object in event-time steps, so both give the same incidents.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aupguard import netaddr
from aupguard.config import Settings
from aupguard.detect import feeds as feed_store
from aupguard.detect.engine import Detection, Engine
from aupguard.detect.prepare import Context, PrefixSet
from aupguard.errors import InputError
from aupguard.incidents import Finding, end_quiet, report
from aupguard.store.db import Store

log = logging.getLogger(__name__)
CONTEXT_REFRESH_S = 60.0
URGENT_SHARE = 0.5        # a batch with this share of the flood pps toward one host...
URGENT_GAP_MS = 100       # ...is evaluated at once, at most every 100 ms
FUTURE_SLACK_MS = 5000


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def dt_to_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def load_context(store: Store, settings: Settings) -> Context:
    """Registry assignments, mail servers, feeds and interfaces as vectorised lookups."""
    from aupguard.registry import list_clients, load_index

    with store.session() as session:
        index = load_index(session)
        clients = list_clients(session)
        rows = feed_store.entries(session)
    labels: dict[str, str] = {}
    for row in rows:
        labels.setdefault(row.prefix, f"{row.feed}: {row.label}".strip().rstrip(":"))
    feed_set = PrefixSet(list(labels))
    mail = [m for c in clients for m in c.mail_servers]
    valid_mail = []
    for m in mail:
        try:
            PrefixSet([m])
            valid_mail.append(m)
        except ValueError:
            log.warning("client mail server %r is not an address; ignored", m)
    return Context(index=index, feeds=feed_set,
                   feed_labels=[labels[p] for p in feed_set.prefixes],
                   mail_servers=PrefixSet(valid_mail),
                   interfaces=Context.interface_map(settings.detect.client_interfaces))


def victims_of(det: Detection) -> list[str]:
    """Scans and spam have many victims: the ones in the sample flows (the rest are in
    the flow store)."""
    if det.victim or not det.evidence:
        return []
    side = "src" if det.role == "victim" else "dst"
    return sorted({f[side] for f in det.evidence})


def to_finding(det: Detection, ctx: Context, victims_sample: list[str] | None = None) -> Finding:
    metrics: dict[str, Any] = {
        "measured": det.metrics, "thresholds": det.thresholds, "role": det.role,
        "window": {"from": ms_to_dt(det.window_ms[0]).isoformat(),
                   "to": ms_to_dt(det.window_ms[1]).isoformat(),
                   "seconds": det.rule.window_s},
    }
    if det.port is not None:
        metrics["port"] = det.port
    if det.host_group:
        metrics["host_group"] = det.host_group
    if victims_sample:
        metrics["victims_sample"] = victims_sample
    if det.rule.name == "c2_contact":
        entry = int(det.metrics.get("feed_entry", -1))
        if 0 <= entry < len(ctx.feed_labels):
            metrics["feed"] = ctx.feed_labels[entry]
    over = [f"{k} {det.metrics[k]:g} >= {v:g}" for k, v in det.thresholds.items()
            if k in det.metrics and det.metrics[k] >= v]
    who = det.client or "unattributed"
    summary = (f"{det.rule.description}: {det.offender or '?'} -> {det.victim or '?'}"
               f"{f' port {det.port}' if det.port is not None else ''} ({who} as {det.role}; "
               f"{', '.join(over)})")
    return Finding(source="flow", rule=det.rule.name, clause_id=det.rule.clause_id, key=det.key,
                   first_seen=ms_to_dt(det.first_ms), last_seen=ms_to_dt(det.last_ms),
                   client_id=det.client, offender=det.offender, victim=det.victim,
                   summary=summary[:1000], metrics=metrics, evidence=det.evidence,
                   peak=det.headline)


@dataclass
class TickStats:
    ticks: int = 0
    eval_s: float = 0.0              # CPU seconds in rule evaluation
    tick_wall_s: float = 0.0         # wall seconds in ticks (evaluation + storing)
    tick_wall_max_s: float = 0.0
    findings: int = 0
    incidents: set[int] = field(default_factory=set)


class LiveDetector:
    """Rules on the live flow stream; one instance per collector."""

    def __init__(self, settings: Settings, store: Store, *, rules: list[str] | None = None,
                 ctx: Context | None = None, speaker=None,
                 clock: Callable[[], float] = time.time):
        self.settings = settings
        self.store = store
        self.clock = clock
        self._ctx_given = ctx is not None
        self.ctx = ctx or load_context(store, settings)
        self._ctx_at = clock()
        self.engine = Engine(settings.detect, self.ctx, rules)
        self.interval_ms = int(settings.detect.interval_s * 1000)
        self.hold = timedelta(seconds=settings.detect.hold_s)
        self.last_tick_ms: int | None = None
        self.offset_ms = 0            # wall clock - event time at the last batch
        self.evidenced: dict[str, int] = {}
        self.victims: dict[str, list[str]] = {}
        self.stats = TickStats()
        self.report_from_ms: int | None = None   # history: flows before --since only fill windows
        self._tick_lock = threading.Lock()
        self.mitigator = None
        if settings.detect.mitigation.enabled:
            from aupguard.detect.mitigate import Mitigator

            self.mitigator = Mitigator(settings.detect.mitigation, store, speaker,
                                       workdir=Path(settings.data_dir) / "exabgp")

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def refresh_context(self) -> None:
        """Reload assignments and feeds (they change while the collector runs)."""
        if self._ctx_given:
            return
        self.ctx = load_context(self.store, self.settings)
        self.engine.ctx = self.ctx
        self._ctx_at = self.clock()

    def process(self, table: pa.Table, now_ms: int | None = None) -> list[int]:
        """Ingest one batch; evaluate if the interval has passed. Returns incident ids."""
        now = self._now_ms() if now_ms is None else int(now_ms)
        if self.clock() - self._ctx_at > CONTEXT_REFRESH_S:
            self.refresh_context()
        self.engine.ingest(table)
        if self.engine.watermark:
            self.offset_ms = now - self.engine.watermark
        since_tick = None if self.last_tick_ms is None else now - self.last_tick_ms
        if since_tick is None or since_tick >= self.interval_ms or (
                since_tick >= URGENT_GAP_MS and self._urgent(table)):
            return self.tick(now)
        return []

    def _urgent(self, table: pa.Table) -> bool:
        """Does this batch alone carry half a second of a flood toward one host? Then
        evaluate now rather than at the next interval (time to detect). One numpy
        group-by over the batch's destinations; microseconds for collector batches."""
        if table.num_rows == 0 or "dst_addr" not in table.column_names:
            return False
        limit = self.engine.hot_limits()[0]["packets"]
        if limit == float("inf"):
            return False
        _, lo = netaddr.arrow_to_hilo(table.column("dst_addr"))
        packets = table.column("packets").to_numpy(zero_copy_only=False)
        _, inverse = np.unique(lo, return_inverse=True)
        per_host = np.bincount(inverse.ravel(), weights=np.nan_to_num(packets.astype(np.float64)))
        return bool(per_host.max() >= URGENT_SHARE * limit)

    def tick(self, now_ms: int | None = None) -> list[int]:
        """Evaluate the rules now and store what they find (thread-safe: the collector's
        listener and `aupguard run`'s timer both call it)."""
        with self._tick_lock:
            began = time.monotonic()
            try:
                return self._tick(now_ms)
            finally:
                took = time.monotonic() - began
                self.stats.tick_wall_s += took
                self.stats.tick_wall_max_s = max(self.stats.tick_wall_max_s, took)

    def _tick(self, now_ms: int | None) -> list[int]:
        now = self._now_ms() if now_ms is None else int(now_ms)
        self.last_tick_ms = now
        until = min(self.engine.watermark, now - self.offset_ms + FUTURE_SLACK_MS)
        started = time.process_time()
        detections = self.engine.evaluate(until, evidence_for=set(self.evidenced)) if until else []
        if self.report_from_ms is not None:
            detections = [d for d in detections if d.last_ms >= self.report_from_ms]
        self.stats.eval_s += time.process_time() - started
        self.stats.ticks += 1
        quiet_now = ms_to_dt(now - self.offset_ms)
        touched: list[int] = []
        with self.store.session() as session:
            for det in detections:
                if det.evidence and not det.victim:
                    self.victims[det.key] = victims_of(det)
                row = report(session, to_finding(det, self.ctx, self.victims.get(det.key)))
                touched.append(row.id)
                self.evidenced[det.key] = det.last_ms
                if self.mitigator is not None:
                    self.mitigator.observe(session, det, row)
            end_quiet(session, quiet_now, self.hold, source="flow")
            if self.mitigator is not None:
                self.mitigator.expire(session, quiet_now)
        horizon = dt_to_ms(quiet_now) - int(self.hold.total_seconds() * 1000)
        self.evidenced = {k: v for k, v in self.evidenced.items() if v >= horizon}
        self.victims = {k: v for k, v in self.victims.items() if k in self.evidenced}
        self.stats.findings += len(detections)
        self.stats.incidents.update(touched)
        return touched

    def close(self) -> None:
        """Stop the ExaBGP process this detector started (routes stay until the session drops)."""
        if self.mitigator is not None and self.mitigator._speaker is not None and hasattr(
                self.mitigator._speaker, "stop"):
            self.mitigator._speaker.stop()

    # -- history ------------------------------------------------------------------
    def replay(self, table: pa.Table, step_ms: int | None = None) -> None:
        """Feed flows in event-time order, one step at a time, as if they arrived live."""
        if table.num_rows == 0:
            return
        step = step_ms or self.interval_ms
        table = table.sort_by("end")
        ends = pc.cast(pc.cast(table.column("end"), pa.timestamp("ms", tz="UTC")),
                       pa.int64()).to_numpy()
        first = (int(ends[0]) // step + 1) * step
        bounds = np.arange(first, int(ends[-1]) + step + 1, step, dtype=np.int64)
        cuts = np.searchsorted(ends, bounds, side="right")
        prev = 0
        for bound, cut in zip(bounds.tolist(), cuts.tolist()):
            if cut > prev:
                self.process(table.slice(prev, cut - prev), now_ms=bound)
                prev = cut


def flow_files(settings: Settings) -> str:
    return str(Path(settings.data_dir) / "flows" / "date=*" / "hour=*" / "*.parquet")


def run_history(settings: Settings, store: Store, since: datetime, until: datetime,
                rules: list[str] | None = None, step_s: float | None = None,
                progress: Callable[[int, int], None] | None = None) -> LiveDetector:
    """Replay the Parquet flow store between `since` and `until` through the live code."""
    import glob

    import duckdb

    pattern = flow_files(settings)
    if not glob.glob(pattern):
        raise InputError(f"no flow files under {Path(settings.data_dir) / 'flows'} "
                         "(collect flows first: `aupguard collect`)")
    if until <= since:
        raise InputError("--until must be after --since")
    detector = LiveDetector(settings, store, rules=rules)
    detector.report_from_ms = dt_to_ms(since)
    lead = max(r.window_s for r in detector.engine.rules)
    con = duckdb.connect(":memory:")
    hour = timedelta(hours=1)
    t = since - timedelta(seconds=lead)
    chunks = max(1, int((until - t) / hour) + 1)
    done = 0
    step_ms = int((step_s or settings.detect.interval_s) * 1000)
    while t < until:
        upper = min(t + hour, until)
        query = ("SELECT * EXCLUDE (date, hour) FROM read_parquet($pattern, hive_partitioning = "
                 "true, union_by_name = true) WHERE \"end\" > $lo AND \"end\" <= $hi "
                 "ORDER BY \"end\"")
        table = con.sql(query, params={"pattern": pattern, "lo": t, "hi": upper}).to_arrow_table()
        detector.replay(table, step_ms)
        t = upper
        done += 1
        if progress:
            progress(done, chunks)
    return detector
