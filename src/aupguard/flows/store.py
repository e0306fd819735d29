"""The flow store: Parquet files partitioned by hour under DATA_DIR/flows.

Layout (Hive style, so DuckDB and Spark prune partitions by themselves)::

    DATA_DIR/flows/date=YYYY-MM-DD/hour=HH/part-<ms>-<pid>-<seq>.parquet

A flow lands in the hour of its ``start``. Files are zstd-compressed and
written atomically: into a dot-named temporary file in the same directory,
fsync'd, then renamed, so a reader's ``*.parquet`` glob never sees half a
file. Several writers (collectors) may share one directory: names carry the
writer's pid and a sequence number.

:class:`FlowWriter` buffers incoming Arrow tables and flushes every
``flush_seconds`` or ``flush_records``; :meth:`FlowWriter.close` flushes the
rest, so nothing accepted is lost on a clean stop.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from aupguard.errors import InputError
from aupguard.flows.schema import ENRICHED_SCHEMA, FLOW_SCHEMA

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

    from aupguard.config import Settings

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
PARTITION_RE = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
HOUR_RE = re.compile(r"^hour=(\d{2})$")
COMPRESSION = "zstd"


def flows_root(settings: Settings) -> Path:
    return Path(settings.data_dir) / "flows"


def conform(table: pa.Table | pa.RecordBatch) -> pa.Table:
    """The table in FLOW_SCHEMA or ENRICHED_SCHEMA (column order fixed), or InputError."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    names = set(table.column_names)
    target = ENRICHED_SCHEMA if "client" in names else FLOW_SCHEMA
    missing = [f.name for f in target if f.name not in names]
    if missing:
        raise InputError(f"flow table lacks columns {missing}; decoders must emit FLOW_SCHEMA")
    table = table.select(target.names)
    if table.schema != target:
        try:
            table = table.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(f"flow table does not fit the flow schema: {exc}") from None
    return table


def partition_dir(root: Path, hour_ms: int) -> Path:
    t = datetime.fromtimestamp(hour_ms / 1000, tz=UTC)
    return root / f"date={t:%Y-%m-%d}" / f"hour={t:%H}"


def split_by_hour(table: pa.Table) -> Iterable[tuple[int, pa.Table]]:
    """(hour start in ms, rows of that hour), vectorised: one sort, no loop per row."""
    if table.num_rows == 0:
        return
    start = table.column("start").cast(pa.int64()).to_numpy()
    hours = start // HOUR_MS
    if hours.min() == hours.max():
        yield int(hours[0]) * HOUR_MS, table
        return
    order = np.argsort(hours, kind="stable")
    sorted_hours = hours[order]
    cuts = np.flatnonzero(np.diff(sorted_hours)) + 1
    bounds = np.concatenate(([0], cuts, [len(order)]))
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        yield int(sorted_hours[lo]) * HOUR_MS, table.take(pa.array(order[lo:hi]))


class FlowWriter:
    """Buffers flow tables and writes them as hourly Parquet files. Thread-safe."""

    def __init__(
        self,
        root: Path,
        flush_seconds: float = 5.0,
        flush_records: int = 200_000,
        retention_days: int = 0,
        auto_flush: bool = True,
    ):
        self.root = Path(root)
        # False: add() never writes; the owner flushes (the collector does it on its
        # housekeeping thread so Parquet encoding never stalls decoding).
        self.auto_flush = auto_flush
        self.flush_seconds = flush_seconds
        self.flush_records = flush_records
        self.retention_days = retention_days
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._lock = threading.Lock()        # guards the buffer
        self._write_lock = threading.Lock()  # one flush at a time
        self._last_flush = time.monotonic()
        self._seq = 0
        self.records_written = 0
        self.files_written = 0
        self.write_errors = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> FlowWriter:
        f = settings.flows
        return cls(flows_root(settings), f.flush_seconds, f.flush_records, f.retention_days)

    @property
    def buffered(self) -> int:
        return self._buffered

    @property
    def full(self) -> bool:
        return self._buffered >= self.flush_records

    def add(self, table: pa.Table | pa.RecordBatch) -> None:
        """Accept flows; flushes by itself once ``flush_records`` are waiting."""
        table = conform(table)
        if table.num_rows == 0:
            return
        with self._lock:
            self._buffer.append(table)
            self._buffered += table.num_rows
            full = self._buffered >= self.flush_records
        if full and self.auto_flush:
            self.flush()

    def maybe_flush(self) -> list[Path]:
        """Flush if the interval has passed (call it from a timer)."""
        if self._buffered and time.monotonic() - self._last_flush >= self.flush_seconds:
            return self.flush()
        return []

    def flush(self) -> list[Path]:
        """Write everything buffered now; returns the files written."""
        with self._write_lock:
            with self._lock:
                pending, self._buffer, self._buffered = self._buffer, [], 0
            self._last_flush = time.monotonic()
            if not pending:
                return []
            written: list[Path] = []
            # Plain and enriched tables are written to separate files (each one schema).
            for schema in (FLOW_SCHEMA, ENRICHED_SCHEMA):
                parts = [t for t in pending if t.schema == schema]
                if not parts:
                    continue
                table = pa.concat_tables(parts)
                for hour_ms, rows in split_by_hour(table):
                    try:
                        written.append(self._write(hour_ms, rows))
                    except OSError:
                        # Keep the rows: they go back in the buffer for the next flush.
                        self.write_errors += 1
                        log.exception("writing %d flows under %s failed; will retry",
                                      rows.num_rows, self.root)
                        with self._lock:
                            self._buffer.append(rows)
                            self._buffered += rows.num_rows
            pending = parts = table = None  # drop references before releasing memory
            # Hand the freed buffers back to the OS between flushes (the allocator
            # otherwise keeps them for reuse; a collector idles most of the time).
            pa.default_memory_pool().release_unused()
            return written

    def _write(self, hour_ms: int, rows: pa.Table) -> Path:
        directory = partition_dir(self.root, hour_ms)
        directory.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        name = f"part-{int(time.time() * 1000)}-{os.getpid()}-{self._seq:06d}.parquet"
        final = directory / name
        tmp = directory / f".{name}.tmp"
        # Not sorted by start: exporters send flows roughly in time order already and
        # the sort cost as much CPU as the zstd encoding (bench/collect.py); the hour
        # partition plus row-group min/max statistics do the pruning.
        pq.write_table(rows, tmp, compression=COMPRESSION, row_group_size=256 * 1024)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        self.records_written += rows.num_rows
        self.files_written += 1
        return final

    def close(self) -> list[Path]:
        return self.flush()

    def enforce_retention(self, now: datetime | None = None) -> list[Path]:
        return enforce_retention(self.root, self.retention_days, now)


def partitions(root: Path) -> list[tuple[int, Path]]:
    """(hour start ms, directory) of every hourly partition, oldest first."""
    found: list[tuple[int, Path]] = []
    if not root.is_dir():
        return found
    for day in root.iterdir():
        m = PARTITION_RE.match(day.name)
        if not m or not day.is_dir():
            continue
        for hour in day.iterdir():
            h = HOUR_RE.match(hour.name)
            if not h or not hour.is_dir():
                continue
            t = datetime.strptime(f"{m.group(1)} {h.group(1)}", "%Y-%m-%d %H").replace(
                tzinfo=UTC)
            found.append((int(t.timestamp() * 1000), hour))
    return sorted(found)


def enforce_retention(root: Path, retention_days: int, now: datetime | None = None) -> list[Path]:
    """Delete hourly partitions that ended more than ``retention_days`` ago."""
    if retention_days <= 0:
        return []
    now = now or datetime.now(UTC)
    cutoff_ms = int((now - timedelta(days=retention_days)).timestamp() * 1000)
    removed = []
    for hour_ms, directory in partitions(root):
        if hour_ms + HOUR_MS <= cutoff_ms:
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
            try:
                directory.parent.rmdir()  # the day, once its last hour is gone
            except OSError:
                pass
    if removed:
        log.info("retention: removed %d hourly flow partitions older than %d days",
                 len(removed), retention_days)
    return removed


def files_between(root: Path, since: datetime | None, until: datetime | None) -> list[Path]:
    """Parquet files of the hours that overlap [since, until)."""
    lo = int(since.timestamp() * 1000) if since else None
    hi = int(until.timestamp() * 1000) if until else None
    files: list[Path] = []
    for hour_ms, directory in partitions(root):
        if lo is not None and hour_ms + HOUR_MS <= lo:
            continue
        if hi is not None and hour_ms >= hi:
            continue
        files.extend(sorted(directory.glob("*.parquet")))
    return files


def read_flows(settings: Settings, since: datetime | None = None,
               until: datetime | None = None, columns: list[str] | None = None) -> pa.Table:
    """Flows with ``since <= start < until`` from the store, as one Arrow table.

    The result has ENRICHED_SCHEMA if any file in range is enriched (plain
    files then give nulls there), else FLOW_SCHEMA.
    """
    files = files_between(flows_root(settings), since, until)
    tables = []
    enriched = False
    for path in files:
        t = pq.read_table(path)
        enriched |= "client" in t.column_names
        tables.append(t)
    schema = ENRICHED_SCHEMA if enriched else FLOW_SCHEMA
    if not tables:
        result = schema.empty_table()
    else:
        result = pa.concat_tables(
            [t if t.schema == schema else _widen(t, schema) for t in tables])
    if since is not None or until is not None:
        start = result.column("start")
        mask = None
        if since is not None:
            mask = pc.greater_equal(start, pa.scalar(since, type=start.type))
        if until is not None:
            upper = pc.less(start, pa.scalar(until, type=start.type))
            mask = upper if mask is None else pc.and_(mask, upper)
        result = result.filter(mask)
    if columns:
        result = result.select(columns)
    return result


def _widen(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A plain flow table with the enrichment columns added as nulls."""
    cols = [table.column(f.name) if f.name in table.column_names
            else pa.nulls(table.num_rows, type=f.type) for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)


def open_duckdb(settings: Settings, con: duckdb.DuckDBPyConnection | None = None
                ) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a ``flows`` view over the whole store.

    Also defines ``ip_text(addr)`` (16-byte address to text) and ``ip('a.b.c.d')``
    (text to 16-byte address) so people can write
    ``WHERE src_addr = ip('192.0.2.1')`` and ``SELECT ip_text(dst_addr)``.
    """
    import duckdb

    from aupguard.flows.query import register_functions

    con = con or duckdb.connect()
    register_functions(con)
    root = flows_root(settings)
    if any(True for _ in root.glob("date=*/hour=*/*.parquet")):
        pattern = str(root / "date=*" / "hour=*" / "*.parquet").replace("'", "''")
        con.execute(
            f"CREATE OR REPLACE VIEW flows AS SELECT * EXCLUDE (date, hour) FROM read_parquet("
            f"'{pattern}', hive_partitioning = true, union_by_name = true)")
    else:
        con.register("_empty_flows", FLOW_SCHEMA.empty_table())
        con.execute("CREATE OR REPLACE VIEW flows AS SELECT * FROM _empty_flows")
    return con
