"""Benchmark: screen a 1,000,000-address list against 1,000,000 suppression entries.

Target (issue 8): under 10 s on this machine. Prints, measured in the same run:
  - engine only (Arrow tables in memory), clear-text entries;
  - engine only, entries stored hashed (SHA-256 of every list address computed);
  - end to end from the SQLite store (load 1M entries + screen);
  - baselines: a pure-Python set loop over the same data, and one SQL lookup per
    address (timed on a sample, extrapolated).

Run by hand:  python bench/suppress.py [--n 1000000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa


def make_data(n: int, seed: int = 42) -> tuple[pa.Array, pa.Array]:
    rng = np.random.default_rng(seed)
    universe = 3 * n
    def addrs(ids: np.ndarray) -> list[str]:
        return [f"User{i}@Dom{i % 20000}.example" for i in ids.tolist()]
    mailing = pa.array(addrs(rng.integers(0, universe, n)), pa.large_string())
    entries = addrs(rng.integers(0, universe, n - 1000)) + [f"@dom{d}.example" for d in range(1000)]
    return mailing, pa.array(entries, pa.large_string())


def supp_table(values: pa.Array, hashed: bool) -> pa.Table:
    from aupguard.bulkmail.addresses import sha256_arrow
    from aupguard.bulkmail.suppress import parse_entries

    parsed = parse_entries(values)
    value = sha256_arrow(parsed["value"].combine_chunks()) if hashed else parsed["value"]
    n = parsed.num_rows
    return pa.table({"scope": pa.array(["*"] * n, pa.large_string()), "kind": parsed["kind"],
                     "value": value, "hashed": pa.array(np.full(n, hashed)),
                     "source": pa.array(["import"] * n, pa.large_string()),
                     "since_ms": pa.array(np.zeros(n, dtype=np.int64))})


def timed(label: str, fn):
    """Wall time (what the target is about) and this process's CPU time (all threads):
    on a shared machine CPU time shows how much of the wall time was waiting for a core."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<58} {seconds:8.2f} s wall {time.process_time() - cpu:8.2f} s cpu")
    return out, seconds


def main() -> None:
    from aupguard.bulkmail.suppress import add_suppressions, screen, screen_arrow
    from aupguard.store.db import Store

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="list size = suppression entries")
    args = parser.parse_args()
    n = args.n
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    (mailing, entries), _ = timed(f"generate {n:,} list + {n:,} entries", lambda: make_data(n))
    clear = supp_table(entries, hashed=False)
    hashed, _ = timed("hash the entries (SHA-256, DuckDB)", lambda: supp_table(entries, hashed=True))

    r1, t_clear = timed("screen, clear entries (engine only)", lambda: screen_arrow(mailing, clear))
    r2, t_hash = timed("screen, hashed entries (engine only)", lambda: screen_arrow(mailing, hashed))
    assert r1.suppressed.num_rows == r2.suppressed.num_rows
    print(f"  -> {r1.suppressed.num_rows:,} must not be mailed, {len(r1.mailable):,} may be")

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        store.migrate()
        at = datetime(2026, 1, 1, tzinfo=timezone.utc)

        def fill():
            with store.session() as s:
                return add_suppressions(s, entries, at=at, source="import")
        added, _ = timed("store 1M entries in SQLite (add_suppressions, setup)", fill)

        def end_to_end(cache=None):
            with store.session() as s:
                return screen(s, mailing, cache_dir=cache)
        r3, t_cold = timed("screen from the store, no snapshot (DB read + screen)", end_to_end)
        assert r3.suppressed.num_rows == r1.suppressed.num_rows
        cache = Path(tmp) / "cache"
        timed("screen from the store, building the Parquet snapshot", lambda: end_to_end(cache))
        r4, t_e2e = timed("screen from the store, snapshot current (what the CLI does)",
                          lambda: end_to_end(cache))
        assert r4.suppressed.num_rows == r1.suppressed.num_rows

        # Baseline 1: one SQL lookup per address (what an ORM loop does), on a sample.
        from aupguard.bulkmail.suppress import is_suppressed
        sample = mailing.slice(0, 500).to_pylist()

        def per_address():
            with store.session() as s:
                return sum(is_suppressed(s, None, a) is not None for a in sample)
        _, t_sample = timed("baseline: one SQL query per address (500 sample)", per_address)
        t_sql = t_sample * n / len(sample)
        store.dispose()

    # Baseline 2: pure-Python set membership over the same data (no hashing).
    def python_loop():
        addr_set, dom_set = set(), set()
        for e in entries.to_pylist():
            e = e.strip().lower()
            (dom_set.add(e[1:]) if e.startswith("@") else addr_set.add(e))
        hits = 0
        for a in mailing.to_pylist():
            a = a.strip().strip("<>").strip().lower()
            if a in addr_set or a.rsplit("@", 1)[-1] in dom_set:
                hits += 1
        return hits
    hits, t_py = timed("baseline: pure-Python set loop (clear text)", python_loop)
    assert hits == r1.suppressed.num_rows

    print()
    print(f"load average at end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"target < 10 s for {n:,} x {n:,}: end to end with current snapshot {t_e2e:.2f} s "
          f"({'PASS' if t_e2e < 10 else 'FAIL'}), without snapshot {t_cold:.2f} s, "
          f"hashed engine {t_hash:.2f} s")
    print(f"vs one SQL query per address (extrapolated {t_sql:,.0f} s): {t_sql / t_e2e:,.0f}x faster end to end")
    print(f"vs pure-Python set loop ({t_py:.2f} s): engine {t_py / t_clear:.2f}x "
          f"(the loop cannot do hashed entries without {n:,} hashlib calls)")


if __name__ == "__main__":
    main()
