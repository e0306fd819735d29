"""Vectorised longest-prefix match equals pytricia on random nested prefix sets."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from aupguard import netaddr
from aupguard.routing.lpm import PrefixIndex
from aupguard.routing.rib import Rib

pytricia = pytest.importorskip("pytricia")


def _v4_prefix():
    return st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)).map(
        lambda t: ipaddress.ip_network((t[0], t[1]), strict=False))


def _v6_prefix():
    # cluster in one /16 so prefixes nest and overlap often; lengths over the whole range
    return st.tuples(st.integers(0, 2**112 - 1), st.integers(0, 128)).map(
        lambda t: ipaddress.ip_network(((0x2001 << 112) | t[0], t[1]), strict=False))


def _near(prefixes, draw_ints):
    """Addresses at prefix edges and inside, where mistakes show."""
    out = []
    for net, r in zip(prefixes, draw_ints):
        first, last = int(net.network_address), int(net.broadcast_address)
        span = last - first
        for v in (first, last, first + r % (span + 1), first - 1, last + 1):
            if 0 <= v <= (2**32 - 1 if net.version == 4 else 2**128 - 1):
                out.append(ipaddress.ip_address(v) if net.version == 6 else ipaddress.IPv4Address(v))
    return out


def _check(prefixes, extra, dense):
    prefixes = list(dict.fromkeys(prefixes))
    rib = Rib.from_routes([{"prefix": str(p), "as_path": [i + 1]} for i, p in enumerate(prefixes)])
    if dense is not None:
        t = rib.table
        rib._index = PrefixIndex(t.column("family").to_numpy(), t.column("net_hi").to_numpy(),
                                 t.column("net_lo").to_numpy(), t.column("plen").to_numpy(), dense=dense)
    trie4, trie6 = pytricia.PyTricia(32), pytricia.PyTricia(128)
    for i, p in enumerate(prefixes):
        (trie4 if p.version == 4 else trie6)[str(p)] = i + 1
    addrs = _near(prefixes, extra) + [ipaddress.ip_address("0.0.0.0"), ipaddress.ip_address("::")]
    hi, lo = netaddr.int_to_hilo(netaddr.address_int(a) for a in addrs)
    rows = rib.lookup_hilo(hi, lo)
    origin = rib.table.column("origin_as").to_numpy()
    origin = np.append(origin, 0)  # row -1 (no route) reads the appended 0
    got = origin[rows]
    want = [(trie4 if a.version == 4 else trie6).get(str(a), 0) for a in addrs]
    assert got.tolist() == want


@settings(max_examples=150, deadline=None)
@given(st.lists(_v4_prefix(), min_size=0, max_size=40), st.lists(st.integers(0, 2**128), min_size=40, max_size=40),
       st.sampled_from([None, True, False]))
def test_lpm_v4_equals_pytricia(prefixes, extra, dense):
    _check(prefixes, extra, dense)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(_v6_prefix(), _v4_prefix()), min_size=1, max_size=40),
       st.lists(st.integers(0, 2**128), min_size=40, max_size=40))
def test_lpm_mixed_equals_pytricia(prefixes, extra):
    _check(prefixes, extra, None)


def test_dense_table_matches_searchsorted():
    from aupguard.routing.synth import synthetic_rib

    rib = synthetic_rib(30_000, 3_000, seed=7)
    t = rib.table
    cols = [t.column(c).to_numpy() for c in ("family", "net_hi", "net_lo", "plen")]
    dense, sparse = PrefixIndex(*cols, dense=True), PrefixIndex(*cols, dense=False)
    rng = np.random.default_rng(3)
    v4 = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    assert np.array_equal(dense.lookup_v4(v4), sparse.lookup_v4(v4))
    assert (dense.lookup_v4(v4) >= 0).mean() > 0.3  # the probe hits routes, not only gaps
