"""Enrichment: FLOW_SCHEMA -> ENRICHED_SCHEMA with ASNs, AS paths, client and direction."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from aupguard import netaddr
from aupguard.flows.schema import ENRICHED_SCHEMA, FLOW_SCHEMA
from aupguard.registry import Client, add_assignment, add_client
from aupguard.routing.enrich import build_enricher, enrich
from aupguard.routing.rib import Rib, rib_path

T0 = datetime(2026, 10, 5, 12, tzinfo=timezone.utc)


def flows(pairs: list[tuple[str, str]], at: datetime = T0) -> pa.Table:
    n = len(pairs)
    src_hi, src_lo = netaddr.strings_to_hilo([s for s, _ in pairs])
    dst_hi, dst_lo = netaddr.strings_to_hilo([d for _, d in pairs])
    ms = int(at.timestamp() * 1000)
    cols = {f.name: pa.nulls(n, f.type) for f in FLOW_SCHEMA}
    cols.update({
        "start": pa.array(np.full(n, ms), pa.timestamp("ms", tz="UTC")),
        "end": pa.array(np.full(n, ms + 1000), pa.timestamp("ms", tz="UTC")),
        "src_addr": netaddr.hilo_to_arrow(src_hi, src_lo),
        "dst_addr": netaddr.hilo_to_arrow(dst_hi, dst_lo),
        "exporter": netaddr.hilo_to_arrow(*netaddr.strings_to_hilo(["127.0.0.1"] * n)),
        "bytes": pa.array(np.arange(n) + 100, pa.int64()),
    })
    return pa.table(cols, schema=FLOW_SCHEMA)


RIB = Rib.from_routes([
    {"prefix": "8.8.8.0/24", "as_path": [3356, 15169]},
    {"prefix": "8.0.0.0/8", "as_path": [3356]},
    {"prefix": "2001:4860::/32", "as_path": [6939, 15169]},
    {"prefix": "198.51.100.0/24", "as_path": [174, 4200000001]},
])


def test_enrich_asn_path_client_direction(store, settings):
    with store.session() as s:
        add_client(s, Client(id="acme", name="ACME", cdr_bps=10**9))
        add_client(s, Client(id="beta", name="Beta"))
        add_assignment(s, "acme", "203.0.113.0/24", actor="test")
        add_assignment(s, "beta", "2001:db8:1::/48", actor="test")
    RIB.save(rib_path(settings))
    enricher = build_enricher(settings, store)
    table = flows([
        ("203.0.113.5", "8.8.8.8"),         # acme sends to Google via 3356
        ("8.8.4.4", "203.0.113.9"),          # acme receives from 8/8 (3356 only)
        ("2001:4860::1", "2001:db8:1::7"),   # beta receives over IPv6
        ("192.0.2.1", "198.51.100.3"),       # neither end is a client
    ])
    out = enricher(table)
    assert out.schema == ENRICHED_SCHEMA
    assert out.column("src_asn").to_pylist() == [0, 3356, 15169, 0]
    assert out.column("dst_asn").to_pylist() == [15169, 0, 0, 4200000001]
    assert out.column("dst_as_path").to_pylist() == [[3356, 15169], None, None, [174, 4200000001]]
    assert out.column("src_as_path").to_pylist() == [None, [3356], [6939, 15169], None]
    assert out.column("src_client").to_pylist() == ["acme", None, None, None]
    assert out.column("dst_client").to_pylist() == [None, "acme", "beta", None]
    assert out.column("client").to_pylist() == ["acme", "acme", "beta", None]
    assert out.column("client_dir").to_pylist() == ["out", "in", "in", None]
    assert out.column("bytes").to_pylist() == [100, 101, 102, 103]


def test_enricher_follows_a_new_snapshot(settings, tmp_path):
    enricher = build_enricher(settings, None)
    table = flows([("10.0.0.1", "8.8.8.8")])
    assert enricher(table).column("dst_asn").to_pylist() == [0]  # no snapshot yet
    path = RIB.save(rib_path(settings))
    assert enricher(table).column("dst_asn").to_pylist() == [15169]
    Rib.from_routes([{"prefix": "8.8.8.0/24", "as_path": [1299, 64500]}]).save(path)
    import os

    os.utime(path, (1, 1))  # mtime changes even within the same clock tick
    assert enricher(table).column("dst_asn").to_pylist() == [64500]


def test_enrich_empty_and_large_vectorised():
    assert enrich(flows([]), RIB).num_rows == 0
    rng = np.random.default_rng(0)
    n = 50_000
    v4 = rng.integers(0x08000000, 0x09000000, n, dtype=np.uint64).astype(np.uint32)
    hi, lo = netaddr.ipv4_to_hilo(v4)
    base = flows([("10.0.0.1", "8.8.8.8")])
    big = pa.table({name: pa.concat_arrays([base.column(name).chunk(0)] * n) for name in base.column_names},
                   schema=FLOW_SCHEMA)
    big = big.set_column(big.schema.get_field_index("dst_addr"), "dst_addr", netaddr.hilo_to_arrow(hi, lo))
    out = enrich(big, RIB)
    in_google = (v4 >> 8) == (0x08080800 >> 8)
    dst_asn = out.column("dst_asn").to_numpy()
    assert (dst_asn[in_google] == 15169).all() and (dst_asn[~in_google] == 3356).all()


from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402

from aupguard.routing.enrich import collapse_prepends  # noqa: E402


@hsettings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.lists(st.integers(1, 5), max_size=8)), max_size=20),
       st.integers(0, 3))
def test_collapse_prepends_matches_python(paths, cut):
    arr = pa.array(paths, pa.list_(pa.uint32())).slice(min(cut, len(paths)))
    want = []
    for p in arr.to_pylist():
        want.append(None if p is None else [a for i, a in enumerate(p) if i == 0 or p[i - 1] != a])
    assert collapse_prepends(arr).to_pylist() == want


def test_enrich_collapses_prepends():
    rib = Rib.from_routes([{"prefix": "8.8.8.0/24", "as_path": [3356, 3356, 3356, 15169, 15169]}])
    out = enrich(flows([("10.0.0.1", "8.8.8.8")]), rib)
    assert out.column("dst_as_path").to_pylist() == [[3356, 15169]]
    assert rib.lookup("8.8.8.8")["as_path"] == [3356, 3356, 3356, 15169, 15169]  # the RIB keeps them
