"""The hourly Parquet flow store: partitioning, atomic writes, retention, reads."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aupguard.errors import InputError
from aupguard.flows import store as store_mod
from aupguard.flows.schema import ENRICHED_SCHEMA, FLOW_SCHEMA
from aupguard.flows.store import (
    FlowWriter,
    conform,
    enforce_retention,
    flows_root,
    open_duckdb,
    partitions,
    read_flows,
)
from aupguard.netaddr import format_address
from tests.flows.traffic import flows_table

H10 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def _rows_over_hours() -> list[dict]:
    # 3 flows at 10:xx, 2 at 11:xx, 1 at 13:59:59.999 (no flow in hour 12).
    return [
        {"start": H10 + timedelta(minutes=1), "src_addr": "10.0.0.1", "packets": 1},
        {"start": H10 + timedelta(minutes=59, seconds=59), "src_addr": "10.0.0.2", "packets": 2},
        {"start": H10 + timedelta(minutes=30), "src_addr": "2001:db8::5", "packets": 3},
        {"start": H10 + timedelta(hours=1), "src_addr": "10.0.0.1", "packets": 4},
        {"start": H10 + timedelta(hours=1, minutes=5), "src_addr": "10.0.0.3", "packets": 5},
        {"start": H10 + timedelta(hours=3, minutes=59, seconds=59, milliseconds=999),
         "src_addr": "10.0.0.4", "packets": 6},
    ]


def test_partitions_by_hour_of_start(settings):
    writer = FlowWriter.from_settings(settings)
    writer.add(flows_table(_rows_over_hours()))
    assert writer.buffered == 6
    files = writer.flush()
    root = flows_root(settings)
    found = {p.parent.relative_to(root).as_posix(): pq.read_table(p).num_rows for p in files}
    assert found == {"date=2026-11-02/hour=10": 3, "date=2026-11-02/hour=11": 2,
                     "date=2026-11-02/hour=13": 1}
    assert writer.buffered == 0 and writer.records_written == 6
    # Each file holds only its hour, zstd-compressed.
    for path in files:
        table = pq.read_table(path)
        hour = int(path.parent.name.split("=")[1])
        starts = table.column("start").to_pylist()
        assert all(s.hour == hour for s in starts)
        meta = pq.ParquetFile(path).metadata
        assert meta.row_group(0).column(0).compression == "ZSTD"
        assert table.schema == FLOW_SCHEMA


def test_read_flows_time_range_and_round_trip(settings):
    writer = FlowWriter.from_settings(settings)
    writer.add(flows_table(_rows_over_hours()))
    writer.flush()
    everything = read_flows(settings)
    assert everything.num_rows == 6
    assert sorted(everything.column("packets").to_pylist()) == [1, 2, 3, 4, 5, 6]
    # [10:30, 11:05) holds the 10:30 and 10:59:59 and 11:00 flows, not 11:05.
    part = read_flows(settings, H10 + timedelta(minutes=30), H10 + timedelta(hours=1, minutes=5))
    assert sorted(part.column("packets").to_pylist()) == [2, 3, 4]
    addrs = {format_address(a) for a in part.column("src_addr").to_pylist()}
    assert addrs == {"10.0.0.2", "2001:db8::5", "10.0.0.1"}
    assert read_flows(settings, H10 + timedelta(hours=5)).num_rows == 0


def test_flush_by_record_count_and_by_interval(settings, monkeypatch):
    writer = FlowWriter(flows_root(settings), flush_seconds=3600, flush_records=4)
    rows = [{"start": H10 + timedelta(seconds=i), "packets": i + 1} for i in range(3)]
    writer.add(flows_table(rows))
    assert writer.files_written == 0 and writer.buffered == 3
    writer.add(flows_table(rows[:1]))  # 4th record reaches flush_records
    assert writer.files_written == 1 and writer.buffered == 0
    writer.add(flows_table(rows))
    assert writer.maybe_flush() == []  # interval not reached
    clock = [1000.0]
    monkeypatch.setattr(store_mod.time, "monotonic", lambda: clock[0])
    writer._last_flush = 1000.0
    clock[0] += 3600.5
    assert len(writer.maybe_flush()) == 1
    assert writer.records_written == 7


def test_failed_write_leaves_no_visible_file_and_keeps_rows(settings, monkeypatch):
    writer = FlowWriter.from_settings(settings)
    writer.add(flows_table(_rows_over_hours()[:2]))
    real_write = pq.write_table

    def half_written(table, where, **kw):
        with open(where, "wb") as fh:  # a partial file, then the disk "fills up"
            fh.write(b"PAR1 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_mod.pq, "write_table", half_written)
    assert writer.flush() == []
    root = flows_root(settings)
    assert list(root.rglob("*.parquet")) == []          # readers see nothing half-written
    assert writer.write_errors == 1 and writer.buffered == 2  # and nothing is lost
    monkeypatch.setattr(store_mod.pq, "write_table", real_write)
    files = writer.flush()
    assert len(files) == 1 and pq.read_table(files[0]).num_rows == 2
    assert read_flows(settings).num_rows == 2


def test_concurrent_reader_never_sees_partial_files(settings):
    writer = FlowWriter.from_settings(settings)
    root = flows_root(settings)
    stop = threading.Event()
    problems: list[str] = []
    seen: set[str] = set()

    def reader() -> None:
        while not stop.is_set():
            for path in root.rglob("*.parquet"):
                try:
                    pq.read_metadata(path)
                    seen.add(path.name)
                except Exception as exc:  # any partial file would fail here
                    problems.append(f"{path.name}: {exc}")

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(40):
            writer.add(flows_table([{"start": H10 + timedelta(seconds=i), "packets": i}] * 200))
            writer.flush()
    finally:
        stop.set()
        t.join()
    assert problems == []
    assert writer.files_written == 40 and len(seen) > 0
    assert read_flows(settings).num_rows == 40 * 200


def test_retention_removes_old_hours_only(settings):
    now = datetime(2026, 11, 29, 12, 30, tzinfo=UTC)
    writer = FlowWriter(flows_root(settings), retention_days=30)
    old = now - timedelta(days=31)
    edge = now - timedelta(days=30, minutes=45)   # its hour ended 30 d 15 min ago
    recent = now - timedelta(days=29)
    writer.add(flows_table([{"start": t} for t in (old, edge, recent)]))
    writer.flush()
    assert len(partitions(flows_root(settings))) == 3
    removed = writer.enforce_retention(now)
    assert {p.parent.name for p in removed} == {f"date={old:%Y-%m-%d}", f"date={edge:%Y-%m-%d}"}
    left = partitions(flows_root(settings))
    assert [d.parent.name for _, d in left] == [f"date={recent:%Y-%m-%d}"]
    assert not (flows_root(settings) / f"date={old:%Y-%m-%d}").exists()  # empty day removed
    assert enforce_retention(flows_root(settings), 0, now) == []  # 0 keeps forever


def test_enriched_and_plain_tables_share_the_view(settings):
    writer = FlowWriter.from_settings(settings)
    writer.add(flows_table([{"start": H10, "packets": 1}]))
    writer.add(flows_table([{"start": H10, "packets": 2, "client": "acme", "src_asn": 64500,
                             "src_as_path": [64501, 64500]}], enriched=True))
    files = writer.flush()
    assert len(files) == 2  # one schema per file
    table = read_flows(settings)
    assert table.schema == ENRICHED_SCHEMA
    got = {r["packets"]: (r["client"], r["src_as_path"]) for r in table.to_pylist()}
    assert got == {1: (None, None), 2: ("acme", [64501, 64500])}
    con = open_duckdb(settings)
    rows = con.execute("SELECT packets, client FROM flows ORDER BY packets").fetchall()
    assert rows == [(1, None), (2, "acme")]


def test_conform_rejects_foreign_tables_and_accepts_batches():
    with pytest.raises(InputError, match="lacks columns"):
        conform(pa.table({"start": [1]}))
    batch = flows_table([{"start": H10}]).to_batches()[0]
    assert conform(batch).schema == FLOW_SCHEMA
    # Column order does not matter; types are cast to the schema.
    shuffled = flows_table([{"start": H10}]).select(list(reversed(FLOW_SCHEMA.names)))
    assert conform(shuffled).schema == FLOW_SCHEMA


def test_empty_store_still_has_a_flows_view(settings):
    con = open_duckdb(settings)
    assert con.execute("SELECT count(*) FROM flows").fetchone() == (0,)
    assert read_flows(settings).schema == FLOW_SCHEMA


def test_writer_process_writes_and_falls_back_when_it_dies(settings):
    from aupguard.flows.writer_process import ProcessFlowWriter

    writer = ProcessFlowWriter.from_settings(settings)
    try:
        writer.add(flows_table(_rows_over_hours()))
        files = writer.flush()
        assert len(files) == 3 and writer.records_written == 6 and writer.buffered == 0
        assert read_flows(settings).num_rows == 6
        writer._proc.kill()  # the child dies: later flows are written in-process
        writer._proc.join()
        writer.add(flows_table([{"start": H10, "packets": 77}]))
        assert writer.write_errors == 1
        assert len(writer.flush()) == 1
    finally:
        writer.close()
    table = read_flows(settings)
    assert table.num_rows == 7 and 77 in table.column("packets").to_pylist()
