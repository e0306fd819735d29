"""Benchmark: longest-prefix match and MRT loading on a full-table-sized synthetic RIB.

Run by hand:  python bench/routing.py [--lookups 10000000] [--v4 1000000] [--v6 200000]

Prints lookups/s of aupguard's vectorised LPM (one core: numpy is single-threaded
here) and of pytricia measured in the same run on the same RIB, their ratio,
and the time to read a full-table MRT dump (aupguard's reader vs mrtparse,
the latter on a slice, extrapolated).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def calibrate() -> str:
    """How busy the (shared) machine is: load average and a fixed Python loop's time."""
    import os

    t = time.perf_counter()
    x = 0
    for i in range(1_000_000):
        x += i
    loop = time.perf_counter() - t
    return (f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; 1M-step Python loop"
            f" {loop * 1000:.0f} ms (compare runs by this, not by wall time)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lookups", type=int, default=10_000_000)
    ap.add_argument("--v4", type=int, default=1_000_000)
    ap.add_argument("--v6", type=int, default=200_000)
    ap.add_argument("--pytricia-lookups", type=int, default=2_000_000)
    ap.add_argument("--mrtparse-records", type=int, default=50_000)
    ap.add_argument("--skip-mrt", action="store_true")
    args = ap.parse_args()

    from aupguard.routing.lpm import PrefixIndex
    from aupguard.routing.synth import synthetic_rib

    print(f"machine: {calibrate()}")

    t = time.perf_counter()
    rib = synthetic_rib(args.v4, args.v6, seed=42)
    fam = rib.table.column("family").to_numpy()
    print(f"synthetic RIB: {len(rib):,} prefixes ({(fam == 4).sum():,} IPv4, {(fam == 6).sum():,} IPv6)"
          f" in {time.perf_counter() - t:.2f} s")

    t = time.perf_counter()
    cols = [rib.table.column(c).to_numpy() for c in ("family", "net_hi", "net_lo", "plen")]
    index = PrefixIndex(*cols)
    build = time.perf_counter() - t
    print(f"index build: {build:.2f} s ({len(index.v4_starts):,} IPv4 intervals,"
          f" {len(index.v6_starts):,} IPv6 intervals, /24 table: {index.table24 is not None})")

    rng = np.random.default_rng(7)
    n = args.lookups
    v4 = rng.integers(1 << 24, 224 << 24, n, dtype=np.uint64).astype(np.uint32)
    hi4 = np.zeros(n, np.uint64)
    lo4 = v4.astype(np.uint64) | np.uint64(0xFFFF00000000)
    # IPv6 probes: inside 2000::/3 where the synthetic prefixes live
    n6 = max(1, n // 10)
    hi6 = (np.uint64(0x2000) << np.uint64(48)) | rng.integers(0, 1 << 45, n6, dtype=np.uint64)
    lo6 = rng.integers(0, 1 << 63, n6, dtype=np.uint64)

    index.lookup(hi4[:1000], lo4[:1000])  # warm up
    t = time.perf_counter()
    rows4 = index.lookup(hi4, lo4)
    dt4 = time.perf_counter() - t
    t = time.perf_counter()
    rows6 = index.lookup(hi6, lo6)
    dt6 = time.perf_counter() - t
    mixed = min(n, 10_000_000)
    mhi = np.concatenate([hi4[: mixed - mixed // 10], hi6[: mixed // 10]])
    mlo = np.concatenate([lo4[: mixed - mixed // 10], lo6[: mixed // 10]])
    t = time.perf_counter()
    index.lookup(mhi, mlo)
    dtm = time.perf_counter() - t
    rate4, rate6, ratem = n / dt4, n6 / dt6, len(mhi) / dtm
    print(f"aupguard LPM IPv4: {n:,} lookups in {dt4:.3f} s = {rate4 / 1e6:.1f} M/s"
          f" ({(rows4 >= 0).mean():.0%} matched)")
    print(f"aupguard LPM IPv6: {n6:,} lookups in {dt6:.3f} s = {rate6 / 1e6:.1f} M/s"
          f" ({(rows6 >= 0).mean():.0%} matched)")
    print(f"aupguard LPM 90% v4 / 10% v6 mix: {len(mhi):,} in {dtm:.3f} s = {ratem / 1e6:.1f} M/s")

    try:
        import pytricia
    except ImportError:
        print("pytricia not installed: no baseline")
    else:
        from aupguard.routing.rib import prefix_text

        t = time.perf_counter()
        trie4, trie6 = pytricia.PyTricia(32), pytricia.PyTricia(128)
        tab = rib.table
        for i, (f, h, lo_, p) in enumerate(zip(*(tab.column(c).to_pylist() for c in ("family", "net_hi", "net_lo", "plen")))):
            (trie4 if f == 4 else trie6)[prefix_text(f, h, lo_, p)] = i
        print(f"pytricia build: {time.perf_counter() - t:.2f} s")
        m = min(args.pytricia_lookups, n)
        import ipaddress

        probes = [str(ipaddress.IPv4Address(int(a))) for a in v4[:m]]
        t = time.perf_counter()
        got = [trie4.get(a, -1) for a in probes]
        dtp = time.perf_counter() - t
        ratep = m / dtp
        same = np.array_equal(np.array(got, dtype=np.int64), rows4[:m].astype(np.int64))
        print(f"pytricia IPv4: {m:,} lookups in {dtp:.3f} s = {ratep / 1e6:.2f} M/s (same answers: {same})")
        print(f"ratio aupguard/pytricia IPv4: {rate4 / ratep:.1f}x")

    if args.skip_mrt:
        return
    from aupguard.routing.mrt import read_mrt
    from aupguard.routing.rib import Rib
    from aupguard.routing.synth import write_mrt

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "full.mrt"
        t = time.perf_counter()
        write_mrt(rib, path)
        print(f"wrote full-table MRT: {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        res = read_mrt(path)
        dt_read = time.perf_counter() - t
        t = time.perf_counter()
        loaded = Rib.from_mrt(res)
        loaded.index
        loaded.save(Path(tmp) / "rib.arrow")
        dt_build = time.perf_counter() - t
        print(f"aupguard MRT read: {res.records:,} records in {dt_read:.1f} s"
              f" ({res.records / dt_read / 1e3:.0f} k records/s); RIB + index + save {dt_build:.1f} s;"
              f" total {dt_read + dt_build:.1f} s")
        try:
            from mrtparse import Reader
        except ImportError:
            return
        k = args.mrtparse_records
        t = time.perf_counter()
        count = 0
        for _entry in Reader(str(path)):
            count += 1
            if count >= k:
                break
        dt_mp = time.perf_counter() - t
        est = dt_mp / count * res.records
        print(f"mrtparse: {count:,} records in {dt_mp:.1f} s ({count / dt_mp / 1e3:.0f} k records/s);"
              f" full table extrapolated {est:.0f} s; ratio aupguard/mrtparse {est / dt_read:.1f}x")


if __name__ == "__main__":
    main()
