"""A constructed month of enriched flows with a hand-computed answer (October 2026).

Rates are chosen so every figure is exact: bytes per 5-minute bin = rate * 300 / 8.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa

from aupguard import netaddr
from aupguard.flows.schema import ENRICHED_SCHEMA
from aupguard.flows.store import FlowWriter, flows_root

MONTH = "2026-10"
M0 = datetime(2026, 10, 1, tzinfo=timezone.utc)
BIN = 300
MBIT = 1_000_000


def per_bin(rate_bps: float) -> int:
    return int(rate_bps * BIN / 8)


class Flows:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, client: str | None, direction: str | None, path: list[int] | None,
            start: datetime, seconds: float, nbytes: int) -> None:
        self.rows.append({"client": client, "dir": direction, "path": path, "start": start,
                          "end": start + timedelta(seconds=seconds), "bytes": int(nbytes)})

    def steady(self, client: str, direction: str, path: list[int], rate_bps: float,
               start: datetime, bins: int) -> None:
        """One long flow spanning `bins` aligned bins at a constant rate."""
        self.add(client, direction, path, start, bins * BIN, per_bin(rate_bps) * bins)

    def table(self) -> pa.Table:
        n = len(self.rows)
        ms = lambda key: pa.array([int(r[key].timestamp() * 1000) for r in self.rows], pa.int64()).cast(
            pa.timestamp("ms", tz="UTC"))
        addr = netaddr.hilo_to_arrow(*netaddr.strings_to_hilo(["192.0.2.1"] * n))
        cols = {f.name: pa.nulls(n, f.type) for f in ENRICHED_SCHEMA}
        paths = [r["path"] for r in self.rows]
        out = [r["dir"] == "out" for r in self.rows]
        cols.update({
            "start": ms("start"), "end": ms("end"), "src_addr": addr, "dst_addr": addr, "exporter": addr,
            "bytes": pa.array([r["bytes"] for r in self.rows], pa.int64()),
            "packets": pa.array(np.ones(n, np.int64)),
            "client": pa.array([r["client"] for r in self.rows], pa.string()),
            "client_dir": pa.array([r["dir"] for r in self.rows], pa.string()),
            "src_client": pa.array([None if o else r["client"] for o, r in zip(out, self.rows)], pa.string()),
            "dst_client": pa.array([r["client"] if o else None for o, r in zip(out, self.rows)], pa.string()),
            "dst_as_path": pa.array([p if o else None for o, p in zip(out, paths)], pa.list_(pa.uint32())),
            "src_as_path": pa.array([None if o else p for o, p in zip(out, paths)], pa.list_(pa.uint32())),
            "dst_asn": pa.array([(p[-1] if p else 0) if o else 0 for o, p in zip(out, paths)], pa.uint32()),
            "src_asn": pa.array([0 if o else (p[-1] if p else 0) for o, p in zip(out, paths)], pa.uint32()),
        })
        return pa.table(cols, schema=ENRICHED_SCHEMA)


def build_month(settings) -> Flows:
    f = Flows()
    d10 = M0 + timedelta(days=10)
    # acme (CDR 1 Gbit/s, limit 100 Mbit/s)
    f.steady("acme", "out", [3356, 64501], 99 * MBIT, d10, 500)        # just under
    f.steady("acme", "out", [174, 64502], 101 * MBIT, d10, 500)        # just over
    f.steady("acme", "out", [3356, 64503], 30 * MBIT, d10, 500)  # 3356 over only by the sum
    f.steady("acme", "in", [2914, 64504], 60 * MBIT, d10, 500)         # in 60 + out 60
    f.steady("acme", "out", [2914, 64504], 60 * MBIT, d10, 500)
    f.steady("acme", "out", [6939, 64599], 1000 * MBIT, d10 + timedelta(days=5), 100)  # burst: 100 bins < 447
    # a flow crossing into the month: only its October half counts
    f.add("acme", "out", [64505], M0 - timedelta(minutes=5), 600, 600_000_000)
    # outside the month, and traffic of nobody: ignored
    f.steady("acme", "out", [174, 64502], 5000 * MBIT, M0 - timedelta(days=3), 600)
    f.steady("acme", "out", [174, 64502], 5000 * MBIT, datetime(2026, 11, 1, tzinfo=timezone.utc), 600)
    f.steady(None, None, [174, 64502], 5000 * MBIT, d10, 600)
    # beta (CDR 100 Mbit/s, limit 10 Mbit/s): 10-minute flows offset by half a bin,
    # every bin half-covered by two flows: each bin gets X/2 (first and last X/4)
    x = 2 * per_bin(10.5 * MBIT)
    t = M0 + timedelta(days=3, seconds=150)
    for j in range(500):
        f.add("beta", "out", [1299, 64510], t + timedelta(seconds=600 * j), 600, x)
    f.steady("beta", "in", [3257, 64511], 9.9 * MBIT, d10, 500)
    # gamma: no CDR on file
    f.steady("gamma", "out", [64520], 5 * MBIT, d10, 500)
    writer = FlowWriter(flows_root(settings), flush_records=10**9)
    writer.add(f.table())
    writer.close()
    return f
