"""Benchmark: a /16 of client space (65,536 addresses) against 3 DNSBL zones.

Target (issue 8): under 5 minutes on this machine. Starts Debian's rbldnsd on a
free loopback port serving three zones (about 1% of the /16 listed in each),
registers a client holding the /16, and runs the real monitor
(`aupguard.reputation.monitor.check`: async, multiplexed UDP, per-zone limits).
Baseline measured in the same run: sequential dnspython `dns.query.udp`, one
query at a time (sampled, extrapolated).

Run by hand:  python bench/dnsbl.py [--prefix 10.77.0.0/16] [--rate 2000] [--concurrency 128]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ZONES = ["bl1.bench", "bl2.bench", "bl3.bench"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    import dns.message
    import dns.query

    from aupguard.registry import Client, add_assignment, add_client
    from aupguard.reputation.config import DnsblZone, ReputationSettings
    from aupguard.reputation.dnsbl import query_name
    from aupguard.reputation.monitor import check
    from aupguard.store.db import Store

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prefix", default="10.77.0.0/16")
    parser.add_argument("--rate", type=float, default=5000, help="queries/s per zone")
    parser.add_argument("--concurrency", type=int, default=128, help="in flight per zone")
    args = parser.parse_args()
    if shutil.which("rbldnsd") is None:
        sys.exit("rbldnsd is not installed (scripts/install)")
    net = ipaddress.ip_network(args.prefix)
    hosts = [str(a) for a in net]
    rng = random.Random(1)
    tmp = Path(tempfile.mkdtemp(prefix="aupguard-dnsbl-bench-"))
    tmp.chmod(0o755)   # rbldnsd drops root privileges and must still read the zone files
    listed: dict[str, set[str]] = {}
    for zone in ZONES:
        chosen = set(rng.sample(hosts, len(hosts) // 100))
        listed[zone] = chosen
        (tmp / f"{zone}.zone").write_text(":127.0.0.2:listed\n" + "\n".join(sorted(chosen)) + "\n")
    port = free_port()
    proc = subprocess.Popen(["rbldnsd", "-n", "-q", "-b", f"127.0.0.1/{port}", "-r", str(tmp), "-t", "60"]
                            + [f"{z}:ip4set:{z}.zone" for z in ZONES],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                dns.query.udp(dns.message.make_query(f"2.0.0.127.{ZONES[0]}", "A"), "127.0.0.1",
                              port=port, timeout=0.2)
                break
            except Exception:
                time.sleep(0.05)
        store = Store(f"sqlite:///{tmp / 'bench.db'}")
        store.migrate()
        with store.session() as s:
            add_client(s, Client(id="big", name="Big client"))
            add_assignment(s, "big", str(net))
        settings = ReputationSettings(
            resolver="127.0.0.1", resolver_port=port, timeout=2.0, retries=2,
            zones=[DnsblZone(name=z, rate=args.rate, concurrency=args.concurrency) for z in ZONES])

        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        start, cpu = time.perf_counter(), time.process_time()
        with store.session() as s:
            report = check(s, settings, now=datetime.now(timezone.utc))
        seconds = time.perf_counter() - start
        print(f"  cpu time of aupguard: {time.process_time() - cpu:.1f} s; "
              f"load average now {os.getloadavg()[0]:.1f}")
        expected = sum(len(v) for v in listed.values())
        print(f"monitor: {report.addresses:,} addresses x {len(ZONES)} zones = {report.queries:,} queries "
              f"in {seconds:.1f} s ({report.queries / seconds:,.0f} q/s; DNS phase {report.seconds:.1f} s)")
        print(f"  listed {report.listed:,} (expected {expected:,}), new incidents "
              f"{len(report.new_listings):,}, errors {report.errors}")
        if report.errors:
            print(f"  first errors: {report.error_samples[:3]}")
        assert report.listed == expected and report.errors == 0

        # Baseline: sequential dnspython, one query at a time.
        sample = hosts[:2000]
        t0 = time.perf_counter()
        for h in sample:
            dns.query.udp(dns.message.make_query(query_name(h, ZONES[0]), "A"), "127.0.0.1",
                          port=port, timeout=2)
        per_query = (time.perf_counter() - t0) / len(sample)
        baseline = per_query * report.queries
        print(f"baseline: sequential dns.query.udp {1 / per_query:,.0f} q/s -> {baseline:.1f} s "
              f"for the same {report.queries:,} queries (extrapolated from 2,000)")
        print()
        print(f"target < 300 s: {seconds:.1f} s ({'PASS' if seconds < 300 else 'FAIL'}); "
              f"{baseline / seconds:.1f}x the sequential baseline")
        store.dispose()
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
