"""Benchmark: grouping incidents into cases (run by hand: python bench/bench_cases_ingest.py [N]).

Baseline, measured in the same run on the same store: storing the same incidents
with `aupguard.incidents.report` (what the producers pay). The ratio says how much
case grouping adds per incident (timeline, audit entry, evidence snapshot + fsync).
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from aupguard.cases import service as cases
from aupguard.config import Settings
from aupguard.incidents import Finding, report
from aupguard.registry import Client, add_client
from aupguard.store.db import Store


def main(n: int = 2000) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-cases-"))
    settings = Settings(data_dir=tmp / "data")
    store = Store(f"sqlite:///{tmp / 'state.db'}")
    store.migrate()
    clients = [f"c{i}" for i in range(max(1, n // 20))]
    with store.session() as s:
        for c in clients:
            add_client(s, Client(id=c, name=c, abuse_email=f"abuse@{c}.example"))
    t0 = datetime(2026, 10, 1, tzinfo=timezone.utc)
    findings = [Finding(source="complaint", rule="arf", clause_id=("mail.spam", "security.scan")[i % 2],
                        key=f"k{i}", first_seen=t0 + timedelta(minutes=i),
                        last_seen=t0 + timedelta(minutes=i + 1), client_id=clients[i % len(clients)],
                        offender=f"192.0.2.{i % 250}", summary=f"finding {i}",
                        evidence=[{"src": f"192.0.2.{i % 250}", "dport": 25}]) for i in range(n)]
    start = time.perf_counter()
    with store.session() as s:
        for f in findings:
            report(s, f)
    base = time.perf_counter() - start
    start = time.perf_counter()
    with store.session() as s:
        touched = cases.ingest_incidents(s, settings)
    ingest = time.perf_counter() - start
    print(f"incidents: {n}, clients: {len(clients)}, cases opened: {len(touched)}")
    print(f"baseline incidents.report: {base:.2f} s ({n / base:,.0f} incidents/s)")
    print(f"cases.ingest_incidents:    {ingest:.2f} s ({n / ingest:,.0f} incidents/s)")
    print(f"ratio ingest/report: {ingest / base:.2f}x")
    store.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
