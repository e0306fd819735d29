"""Attribution: vectorised == scalar == brute force, over random overlapping assignments."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aupguard import netaddr
from aupguard.registry.attribution import (
    AMBIGUOUS,
    NOBODY,
    AttributionIndex,
    Span,
    brute_force,
    to_ms,
)

EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
CLIENTS = ["a", "b", "c", "d"]


def hour(n: int) -> datetime:
    return EPOCH + timedelta(hours=n)


@st.composite
def v4_prefix(draw):
    # A small address space (10.0.0.0/22) so random prefixes overlap often.
    plen = draw(st.integers(22, 32))
    base = int(ipaddress.IPv4Address("10.0.0.0")) + draw(st.integers(0, 1023))
    net = ipaddress.ip_network((base, plen), strict=False)
    return str(net)


@st.composite
def v6_prefix(draw):
    plen = draw(st.integers(116, 128))
    base = int(ipaddress.IPv6Address("2001:db8::")) + draw(st.integers(0, 4095))
    return str(ipaddress.ip_network((base, plen), strict=False))


@st.composite
def span(draw):
    prefix = draw(st.one_of(v4_prefix(), v6_prefix()))
    start = draw(st.one_of(st.none(), st.integers(0, 20)))
    length = draw(st.integers(1, 20))
    end = draw(st.one_of(st.none(), st.just((start or 0) + length)))
    ports = draw(st.one_of(st.none(), st.tuples(st.integers(0, 3), st.integers(0, 3))))
    port_lo = port_hi = None
    if ports:
        port_lo, port_hi = sorted(p * 16384 for p in ports)
        port_hi += 16383
    return Span(draw(st.sampled_from(CLIENTS)), prefix,
                hour(start) if start is not None else None,
                hour(end) if end is not None else None, port_lo, port_hi)


@st.composite
def query(draw):
    if draw(st.booleans()):
        addr = str(ipaddress.IPv4Address(int(ipaddress.IPv4Address("10.0.0.0")) + draw(st.integers(0, 1100))))
    else:
        addr = str(ipaddress.IPv6Address(int(ipaddress.IPv6Address("2001:db8::")) + draw(st.integers(0, 4200))))
    at = hour(draw(st.integers(-2, 45))) + timedelta(minutes=draw(st.sampled_from([0, 30])))
    # Port-range edges (multiples of 16384 and the port before) are where off-by-ones live.
    edges = [0, 1] + [k * 16384 + d for k in range(1, 4) for d in (-1, 0)] + [65535]
    port = draw(st.one_of(st.none(), st.sampled_from(edges), st.integers(0, 65535)))
    return addr, at, port


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spans=st.lists(span(), min_size=0, max_size=25), queries=st.lists(query(), min_size=1, max_size=40))
def test_vectorised_equals_scalar_equals_brute_force(spans, queries):
    index = AttributionIndex(spans)
    hi, lo = netaddr.strings_to_hilo(q[0] for q in queries)
    times = np.array([to_ms(q[1], 0) for q in queries], dtype=np.int64)
    ports = np.array([-1 if q[2] is None else q[2] for q in queries], dtype=np.int32)
    codes = index.lookup(hi, lo, times, ports)
    for (addr, at, port), code in zip(queries, codes):
        expected = brute_force(spans, addr, at, port)
        scalar = index.who(addr, at, port)
        assert scalar.status == expected.status, (addr, at, port, spans)
        assert scalar.client_id == expected.client_id
        assert sorted(scalar.candidates) == sorted(expected.candidates)
        if expected.status == "match":
            assert index.client_ids[code] == expected.client_id
        elif expected.status == "ambiguous":
            assert code == AMBIGUOUS
        else:
            assert code == NOBODY


def test_most_specific_time_and_port_rules():
    spans = [
        Span("isp", "198.51.100.0/24"),
        Span("old", "198.51.100.64/26", hour(0), hour(10)),
        Span("new", "198.51.100.64/26", hour(10)),
        Span("cg1", "203.0.113.5/32", port_lo=1024, port_hi=2047),
        Span("cg2", "203.0.113.5/32", port_lo=2048, port_hi=4095),
        Span("x", "2001:db8::/32"),
        Span("y", "2001:db8:1::/48", hour(0), hour(5)),
    ]
    idx = AttributionIndex(spans)
    assert idx.who("198.51.100.70", hour(5)).client_id == "old"
    assert idx.who("198.51.100.70", hour(10)).client_id == "new"       # valid_to is exclusive
    assert idx.who("198.51.100.10", hour(5)).client_id == "isp"
    assert idx.who("203.0.113.5", hour(1), 1500).client_id == "cg1"
    assert idx.who("203.0.113.5", hour(1), 3000).client_id == "cg2"
    assert [idx.who("203.0.113.5", hour(1), p).client_id for p in (1024, 2047, 2048, 4095)] == \
        ["cg1", "cg1", "cg2", "cg2"]
    hi, lo = netaddr.strings_to_hilo(["203.0.113.5"] * 4)
    codes = idx.lookup(hi, lo, np.full(4, to_ms(hour(1), 0)), np.array([1024, 2047, 2048, 0]))
    assert [idx.client_ids[c] if c >= 0 else c for c in codes] == ["cg1", "cg1", "cg2", NOBODY]
    amb = idx.who("203.0.113.5", hour(1))
    assert amb.status == "ambiguous" and sorted(amb.candidates) == ["cg1", "cg2"]
    assert idx.who("203.0.113.5", hour(1), 5000).status == "none"
    assert idx.who("2001:db8:1::1", hour(1)).client_id == "y"
    assert idx.who("2001:db8:1::1", hour(6)).client_id == "x"
    assert idx.who("::ffff:198.51.100.70", hour(5)).client_id == "old"  # mapped form
    assert idx.who("192.0.2.1", hour(1)).status == "none"


def test_lookup_arrow_returns_client_ids_and_nulls():
    idx = AttributionIndex([Span("a", "192.0.2.0/24"), Span("b", "2001:db8::/32")])
    hi, lo = netaddr.strings_to_hilo(["192.0.2.7", "2001:db8::9", "8.8.8.8"])
    addrs = netaddr.hilo_to_arrow(hi, lo)
    times = pa.array([0, 0, 0], pa.timestamp("ms", tz="UTC"))
    out = idx.lookup_arrow(addrs, times, pa.array([80, None, 53], pa.uint16()))
    assert out.to_pylist() == ["a", "b", None]


def test_full_space_and_empty_index():
    idx = AttributionIndex([Span("all6", "::/0"), Span("all4", "0.0.0.0/0")])
    hi, lo = netaddr.strings_to_hilo(["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "1.2.3.4", "::"])
    assert [idx.client_ids[c] for c in idx.lookup(hi, lo, np.zeros(3, np.int64))] == ["all6", "all4", "all6"]
    empty = AttributionIndex([])
    assert empty.lookup(hi, lo, np.zeros(3, np.int64)).tolist() == [NOBODY] * 3
    assert empty.who("1.2.3.4").status == "none"
