"""A FlowWriter in a child process: Parquet encoding off the collector's GIL and core share.

About 40% of the collector's CPU is zstd Parquet encoding (bench/collect.py). In
a child process it no longer competes with receiving and decoding for the GIL,
and it gets its own scheduling share. Tables cross as Arrow IPC streams over a
pipe (a copy of the column buffers, no per-row work).

Messages to the child: ``T`` + IPC stream (add), ``F`` (flush, answered), ``R``
(retention, answered), ``C`` (flush and exit, answered). Answers are JSON
counters. If the child dies, the parent writes in-process from then on (the
child's unflushed buffer, at most ``flush_records`` flows, is what is lost; the
error is logged and counted).
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa

from aupguard.flows.store import FlowWriter, conform

log = logging.getLogger(__name__)


def _child(conn: Any, root: str, flush_seconds: float, flush_records: int,
           retention_days: int) -> None:
    writer = FlowWriter(Path(root), flush_seconds, flush_records, retention_days)

    def answer(written: list[Path] | None = None) -> None:
        conn.send_bytes(json.dumps({
            "records_written": writer.records_written, "files_written": writer.files_written,
            "write_errors": writer.write_errors,
            "paths": [str(p) for p in (written or [])]}).encode())

    while True:
        if not conn.poll(0.5):
            writer.maybe_flush()
            continue
        try:
            msg = conn.recv_bytes()
        except EOFError:  # the parent is gone: keep what we have
            writer.close()
            return
        kind, body = msg[:1], msg[1:]
        if kind == b"T":
            with pa.ipc.open_stream(body) as reader:
                writer.add(reader.read_all())
            writer.maybe_flush()
        elif kind == b"F":
            answer(writer.flush())
        elif kind == b"R":
            answer(writer.enforce_retention())
        elif kind == b"C":
            answer(writer.close())
            return


class ProcessFlowWriter:
    """Same interface as :class:`FlowWriter` (add, flush, maybe_flush, close, counters)."""

    def __init__(self, root: Path, flush_seconds: float = 5.0, flush_records: int = 200_000,
                 retention_days: int = 0):
        self.root = Path(root)
        self.flush_records = flush_records
        self.auto_flush = True  # the child flushes by itself
        self._args = (str(root), flush_seconds, flush_records, retention_days)
        ctx = mp.get_context("spawn")  # never fork a process that runs threads
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_child, args=(child, *self._args),
                                 name="aupguard-flow-writer", daemon=True)
        self._proc.start()
        child.close()
        self._lock = threading.Lock()
        self._fallback: FlowWriter | None = None
        self._sent = 0
        self.records_written = 0
        self.files_written = 0
        self.write_errors = 0

    @classmethod
    def from_settings(cls, settings: Any) -> ProcessFlowWriter:
        from aupguard.flows.store import flows_root

        f = settings.flows
        return cls(flows_root(settings), f.flush_seconds, f.flush_records, f.retention_days)

    @property
    def buffered(self) -> int:
        if self._fallback is not None:
            return self._fallback.buffered
        return max(0, self._sent - self.records_written)  # as of the last answer

    @property
    def full(self) -> bool:
        return False  # the child flushes when full

    def _lost_child(self, exc: BaseException) -> FlowWriter:
        self.write_errors += 1
        log.error("the flow writer process failed (%s); writing in-process from now on", exc)
        self._fallback = FlowWriter(Path(self._args[0]), *self._args[1:])
        return self._fallback

    def add(self, table: pa.Table | pa.RecordBatch) -> None:
        table = conform(table)
        if table.num_rows == 0:
            return
        with self._lock:
            if self._fallback is None:
                sink = pa.BufferOutputStream()
                with pa.ipc.new_stream(sink, table.schema) as stream:
                    stream.write_table(table)
                try:
                    self._conn.send_bytes(b"T" + sink.getvalue().to_pybytes())
                    self._sent += table.num_rows
                    return
                except (OSError, ValueError) as exc:
                    self._lost_child(exc)
            assert self._fallback is not None
            self._fallback.add(table)

    def _ask(self, kind: bytes) -> list[Path]:
        with self._lock:
            if self._fallback is not None:
                fb = self._fallback
                return {b"F": fb.flush, b"R": fb.enforce_retention, b"C": fb.close}[kind]()
            try:
                self._conn.send_bytes(kind)
                reply = json.loads(self._conn.recv_bytes())
            except (OSError, EOFError, ValueError) as exc:
                return self._lost_child(exc).flush()
            self.records_written = reply["records_written"]
            self.files_written = reply["files_written"]
            self.write_errors = reply["write_errors"]
            return [Path(p) for p in reply["paths"]]

    def flush(self) -> list[Path]:
        return self._ask(b"F")

    def maybe_flush(self) -> list[Path]:
        return []  # the child flushes on its own timer

    def enforce_retention(self, now: Any = None) -> list[Path]:
        return self._ask(b"R")

    def close(self) -> list[Path]:
        written = self._ask(b"C")
        self._proc.join(timeout=30)
        if self._fallback is not None:
            written += self._fallback.close()
        return written
