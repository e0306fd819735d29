"""Benchmark: vectorised client attribution vs pytricia (longest-prefix match only).

1,000,000 (address, time) pairs against 100,000 assignments: nested IPv4
prefixes (/16 reseller blocks, /24 customers, /29 and /32 end users), part of
them time-bounded (reassigned mid-period), a few CGNAT port-ranged. pytricia
answers the easier question (prefix only, no time, no port) and is the
baseline measured in the same run. Run by hand: ``python bench/attribution.py``.
"""

from __future__ import annotations

import ipaddress
import resource
import time
from datetime import datetime, timedelta, timezone

import numpy as np

from aupguard import netaddr
from aupguard.registry.attribution import AttributionIndex, Span, to_ms

N_ASSIGN = 100_000
N_QUERY = 1_000_000
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def build_spans(rng: np.random.Generator) -> list[Span]:
    spans: list[Span] = []
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    for b in range(64):                       # 64 reseller /16s
        spans.append(Span(f"r{b}", str(ipaddress.ip_network((base + (b << 16), 16)))))
    seen: set[str] = set()
    while len(spans) < N_ASSIGN:
        b = int(rng.integers(0, 64))
        c = int(rng.integers(0, 256))
        kind = rng.random()
        if kind < 0.55:
            net, plen = base + (b << 16) + (c << 8), 24
        elif kind < 0.9:
            net, plen = base + (b << 16) + (c << 8) + (int(rng.integers(0, 32)) << 3), 29
        else:
            net, plen = base + (b << 16) + (c << 8) + int(rng.integers(0, 256)), 32
        cid = f"c{len(spans)}"
        prefix = str(ipaddress.ip_network((net, plen)))
        if prefix in seen:                    # one holder per prefix and time, as in a clean registry
            continue
        seen.add(prefix)
        if rng.random() < 0.3:                # reassigned: two holders over the year
            cut = T0 + timedelta(days=int(rng.integers(1, 365)))
            spans.append(Span(cid, prefix, None, cut))
            spans.append(Span(cid + "b", prefix, cut, None))
        elif rng.random() < 0.02:             # CGNAT: four port blocks
            for k in range(4):
                spans.append(Span(f"{cid}p{k}", prefix, port_lo=k * 16384, port_hi=k * 16384 + 16383))
        else:
            spans.append(Span(cid, prefix))
    return spans[:N_ASSIGN]


def main() -> None:
    rng = np.random.default_rng(7)
    spans = build_spans(rng)
    t = time.perf_counter()
    index = AttributionIndex(spans)
    build_s = time.perf_counter() - t
    v4 = (int(ipaddress.IPv4Address("10.0.0.0")) + rng.integers(0, 64 << 16, N_QUERY)).astype(np.uint32)
    hi, lo = netaddr.ipv4_to_hilo(v4)
    times = to_ms(T0, 0) + rng.integers(0, 365 * 86400 * 1000, N_QUERY)
    ports = rng.integers(0, 65536, N_QUERY).astype(np.int32)

    index.lookup(hi[:1000], lo[:1000], times[:1000], ports[:1000])  # warm up
    t = time.process_time()
    codes = index.lookup(hi, lo, times, ports)
    ours = time.process_time() - t
    matched = float((codes >= 0).mean())

    try:
        import pytricia
    except ImportError:
        pytricia = None
    tri_rate = None
    if pytricia is not None:
        tree = pytricia.PyTricia(32)
        for s in spans:
            tree[s.prefix] = s.client_id
        addrs = [str(ipaddress.IPv4Address(int(a))) for a in v4]
        t = time.process_time()
        get = tree.get
        for a in addrs:
            get(a)
        tri = time.process_time() - t
        tri_rate = N_QUERY / tri

    rate = N_QUERY / ours
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"assignments: {len(spans):,}  queries: {N_QUERY:,}  index build: {build_s:.2f} s  "
          f"max candidate depth: {index.max_depth}")
    print(f"aupguard attribution (prefix+time+port): {rate / 1e6:.2f} M lookups/CPU-s  "
          f"(matched {matched:.1%})")
    if tri_rate:
        print(f"pytricia (prefix only, same run):         {tri_rate / 1e6:.2f} M lookups/CPU-s")
        print(f"ratio aupguard / pytricia:                {rate / tri_rate:.1f}x")
    print(f"peak RSS: {peak_mib:.0f} MiB   target: >= 2 M/s and >= 2x pytricia")


if __name__ == "__main__":
    main()
