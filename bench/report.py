"""Benchmark: the monthly per-ASN CDR report over a month of synthetic enriched flows.

Run by hand:  python bench/report.py [--flows 10000000] [--data /tmp/aupguard-bench-report] [--reuse]

Writes one month (October 2026) of ENRICHED_SCHEMA flows into the Parquet flow
store (hourly partitions, through aupguard's FlowWriter), registers the clients
with CDRs, then runs ``asn_report`` in a fresh process to measure its wall time
and peak memory (ru_maxrss). Baseline in the same run: a plain DuckDB scan of
the same files (bytes per client), i.e. the cost of just reading the data.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

MONTH = "2026-10"
N_CLIENTS = 200
N_PATHS = 20_000


def generate(data: Path, n_flows: int, seed: int = 1) -> None:
    import pyarrow as pa

    from aupguard import netaddr
    from aupguard.config import Settings
    from aupguard.flows.schema import ENRICHED_SCHEMA
    from aupguard.flows.store import FlowWriter, flows_root
    from aupguard.registry import Client, add_client
    from aupguard.store.db import Store

    settings = Settings(data_dir=data)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 6, N_PATHS)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    values = rng.integers(64512, 65535, int(offsets[-1])).astype(np.uint32)
    values[offsets[:-1]] = np.array([174, 3356, 1299, 2914, 6939], np.uint32)[rng.integers(0, 5, N_PATHS)]
    pool = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.uint32()))
    last = np.asarray(pool.values)[np.asarray(pool.offsets)[1:] - 1]
    clients = pa.array([f"c{i:04d}" for i in range(N_CLIENTS)])

    month_start = int(datetime(2026, 10, 1, tzinfo=timezone.utc).timestamp() * 1000)
    import pyarrow.compute as pc

    days = 31
    per_day = n_flows // days
    writer = FlowWriter(flows_root(settings), flush_records=10**9)
    t = time.perf_counter()
    for day in range(days):
        n = per_day + (n_flows % days if day == days - 1 else 0)
        start = month_start + day * 86_400_000 + rng.integers(0, 86_400_000, n)
        kind = rng.random(n)
        dur = np.where(kind < 0.7, rng.integers(0, 60_000, n),
                       np.where(kind < 0.95, rng.integers(60_000, 600_000, n), rng.integers(600_000, 3_600_000, n)))
        out = rng.random(n) < 0.6
        pidx = rng.zipf(1.3, n) % N_PATHS
        cidx = rng.zipf(1.5, n) % N_CLIENTS
        addr = netaddr.hilo_to_arrow(np.zeros(n, np.uint64),
                                     rng.integers(0, 1 << 32, n, dtype=np.uint64) | np.uint64(0xFFFF00000000))
        cols = {f.name: pa.nulls(n, f.type) for f in ENRICHED_SCHEMA}
        client = clients.take(pa.array(cidx))
        cols.update({
            "start": pa.array(start, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            "end": pa.array(start + dur, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            "src_addr": addr, "dst_addr": addr, "exporter": addr,
            "bytes": pa.array(rng.lognormal(9, 2.5, n).astype(np.int64) + 40),
            "packets": pa.array(rng.integers(1, 1000, n)),
            "client": client,
            "client_dir": pc.if_else(pa.array(out), pa.scalar("out"), pa.scalar("in")),
            "src_client": pc.if_else(pa.array(out), client, pa.scalar(None, pa.string())),
            "dst_client": pc.if_else(pa.array(out), pa.scalar(None, pa.string()), client),
            "dst_as_path": pool.take(pa.array(pidx, mask=~out)),
            "src_as_path": pool.take(pa.array(pidx, mask=out)),
            "dst_asn": pa.array(np.where(out, last[pidx], 0).astype(np.uint32)),
            "src_asn": pa.array(np.where(out, 0, last[pidx]).astype(np.uint32)),
        })
        writer.add(pa.table(cols, schema=ENRICHED_SCHEMA))
        writer.flush()  # one file per hour and day: what a compacted flow store holds
    writer.close()
    print(f"generated {n_flows:,} flows in {time.perf_counter() - t:.0f} s;"
          f" {sum(p.stat().st_size for p in flows_root(settings).rglob('*.parquet')) / 1e9:.2f} GB Parquet")
    store = Store(settings.database_url)
    store.migrate()
    with store.session() as s:
        for i in range(N_CLIENTS):
            add_client(s, Client(id=f"c{i:04d}", name=f"Client {i}", cdr_bps=int(10 ** rng.uniform(7, 10))),
                       actor="bench")
    store.dispose()


def run_report(data: Path, threads: int | None) -> dict:
    """In this process (called in a child): the report's wall time and peak RSS."""
    from aupguard.accounting.report import asn_report
    from aupguard.config import Settings
    from aupguard.store.db import Store

    settings = Settings(data_dir=data)
    store = Store(settings.database_url)
    t = time.perf_counter()
    report = asn_report(settings, store, MONTH, threads=threads)
    wall = time.perf_counter() - t
    return {"wall_s": round(wall, 2), "rows": len(report.rows), "void": len(report.void),
            "files": report.files, "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def run_baseline(data: Path, threads: int | None) -> dict:
    """The cost of just reading the month: DuckDB sum of bytes per client over the same files."""
    import duckdb

    t = time.perf_counter()
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {threads}")
    pattern = str(data / "flows" / "date=*" / "hour=*" / "*.parquet")
    con.execute(f"SELECT client, SUM(bytes) FROM read_parquet('{pattern}') GROUP BY client").fetchall()
    return {"wall_s": round(time.perf_counter() - t, 2),
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def child(kind: str, data: Path, threads: int | None) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--data", str(data)]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flows", type=int, default=10_000_000)
    ap.add_argument("--data", type=Path, default=Path("/tmp/aupguard-bench-report"))
    ap.add_argument("--reuse", action="store_true", help="Keep flows generated by an earlier run.")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--child", choices=["report", "baseline"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        fn = run_report if args.child == "report" else run_baseline
        print(json.dumps(fn(args.data, args.threads)))
        return
    data = args.data / f"{args.flows}"
    if not (args.reuse and (data / "flows").exists()):
        import shutil

        shutil.rmtree(data, ignore_errors=True)
        generate(data, args.flows)
    print(f"machine: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    base = child("baseline", data, args.threads)
    print(f"baseline scan (bytes per client): {base['wall_s']:.1f} s, peak {base['peak_rss_gib']:.2f} GiB")
    rep = child("report", data, args.threads)
    print(f"asn report {MONTH} over {args.flows:,} flows ({rep['files']} files): {rep['wall_s']:.1f} s,"
          f" peak RSS {rep['peak_rss_gib']:.2f} GiB, {rep['rows']:,} client x ASN rows, {rep['void']} void")
    print(f"ratio report / scan: {rep['wall_s'] / max(base['wall_s'], 1e-9):.1f}x;"
          f" throughput {args.flows / rep['wall_s'] / 1e6:.2f} M flows/s")


if __name__ == "__main__":
    main()
