"""Hypothesis fuzzing, one test per decoder: random and mutated datagrams never raise,
never hang, keep memory bounded, and whatever is emitted is a valid FLOW_SCHEMA batch."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aupguard.flows.decode import Decoder
from aupguard.flows.schema import FLOW_SCHEMA
from tests.flows import test_flows_decode_build as B

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXP = "198.51.100.1"


def _check(dec: Decoder, datagrams: list[bytes]) -> None:
    batches = dec.feed_many([(d, EXP, 0) for d in datagrams])
    for b in batches:
        assert b.schema == FLOW_SCHEMA
        b.validate(full=True)
    st_ = dec.stats[EXP]
    assert st_.datagrams == len(datagrams)
    assert st_.records == sum(b.num_rows for b in batches)
    assert dec.pending_records() <= dec.max_pending


def _mutations(seed: bytes):
    """A valid datagram, then cut, bytes overwritten, or a chunk spliced in."""
    return st.tuples(
        st.integers(0, len(seed)),
        st.lists(st.tuples(st.integers(0, max(len(seed) - 1, 0)), st.integers(0, 255)), max_size=8),
        st.binary(max_size=64),
        st.integers(0, len(seed)),
    ).map(lambda m: _mutate(seed, *m))


def _mutate(seed: bytes, cut: int, flips: list, splice: bytes, at: int) -> bytes:
    data = bytearray(seed)
    for pos, val in flips:
        if pos < len(data):
            data[pos] = val
    data = data[:at] + splice + data[at:] if splice else data
    return bytes(data[: max(cut, 2)]) if cut < len(seed) // 2 else bytes(data)


V5_SEED = B.v5([B.v5_record(), B.v5_record(proto=17)], sampling=(1 << 14) | 10)
V9_SEED = B.v9(
    [
        B.flowset(0, B.v9_template(300, B.BASIC_V9)),
        B.flowset(1, B.v9_options_template(301, [(1, 4)], [(48, 1), (50, 4)])),
        B.flowset(301, struct.pack(">IBI", 0, 1, 100), pad_to=4),
        B.flowset(300, B.basic_record() * 3, pad_to=4),
    ]
)
IPFIX_SEED = B.ipfix(
    [
        B.flowset(2, B.ipfix_template(256, [(8, 4), (12, 4), (82, 65535), (99, 4, 9), (2, 8)])),
        B.flowset(
            256,
            B.v4("10.0.0.1")
            + B.v4("10.0.0.2")
            + B.varlen(b"eth0")
            + b"ABCD"
            + struct.pack(">Q", 5),
        ),
        B.flowset(2, struct.pack(">HH", 256, 0)),
    ]
)
SFLOW_SEED = B.sflow(
    [
        B.sflow_flow_sample([B.sflow_raw_header(B.ether_ipv4_tcp(vlan=7))]),
        B.sflow_flow_sample([B.sflow_raw_header(B.ether_ipv6_udp())], expanded=True),
        B.sflow_counter_sample(),
    ]
)


def _prefixed(prefix: bytes):
    return st.binary(max_size=400).map(lambda b: prefix + b)


@FUZZ
@given(st.lists(st.one_of(_mutations(V5_SEED), _prefixed(b"\x00\x05")), min_size=1, max_size=6))
def test_fuzz_netflow_v5(datagrams):
    _check(Decoder(), datagrams)


@FUZZ
@given(st.lists(st.one_of(_mutations(V9_SEED), _prefixed(b"\x00\x09")), min_size=1, max_size=6))
def test_fuzz_netflow_v9(datagrams):
    _check(Decoder(max_pending=50), [V9_SEED] + datagrams)


@FUZZ
@given(st.lists(st.one_of(_mutations(IPFIX_SEED), _prefixed(b"\x00\x0a")), min_size=1, max_size=6))
def test_fuzz_ipfix(datagrams):
    _check(Decoder(max_pending=50), datagrams)


@FUZZ
@given(
    st.lists(
        st.one_of(_mutations(SFLOW_SEED), _prefixed(b"\x00\x00\x00\x05")), min_size=1, max_size=6
    )
)
def test_fuzz_sflow(datagrams):
    _check(Decoder(), datagrams)


@FUZZ
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=8))
def test_fuzz_any_bytes(datagrams):
    _check(Decoder(max_pending=20), datagrams)


def test_seeds_are_valid_datagrams():
    """The fuzz seeds decode cleanly, so mutations start from meaningful input."""
    dec = Decoder()
    out = dec.feed_many([(d, EXP, 0) for d in (V5_SEED, V9_SEED, IPFIX_SEED, SFLOW_SEED)])
    assert sum(b.num_rows for b in out) == 2 + 3 + 1 + 2
    assert dec.stats[EXP].errors == {}


# --- sFlow: the vectorised walk equals the scalar reference on valid datagrams -------------
def _sample_strategy():
    frames = st.sampled_from(
        [
            B.ether_ipv4_tcp(),
            B.ether_ipv4_tcp(vlan=12, sport=1, dport=2, flags=0x02),
            B.ether_ipv6_udp(),
            B.ether_ipv4_icmp(icmp_type=0),
            b"\x02" * 12 + b"\x08\x06" + b"\0" * 28,  # ARP: no IP
        ]
    )
    sampled4 = st.builds(
        lambda sp, dp: (
            struct.pack(">II", 3, 32)
            + struct.pack(">II4s4sIIII", 99, 6, B.v4("10.0.0.7"), B.v4("10.0.0.8"), sp, dp, 2, 0)
        ),
        st.integers(0, 65535),
        st.integers(0, 65535),
    )
    gateway = st.builds(
        lambda asn, path: (
            struct.pack(">II", 1003, 32 + 4 * len(path))
            + struct.pack(">I4sIIII", 1, B.v4("192.0.2.1"), 65000, asn, 65001, 1)
            + struct.pack(">II", 2, len(path))
            + b"".join(struct.pack(">I", a) for a in path)
        ),
        st.integers(0, 2**32 - 1),
        st.lists(st.integers(1, 2**32 - 1), min_size=1, max_size=4),
    )
    record = st.one_of(frames.map(B.sflow_raw_header), sampled4, gateway)
    flow = st.builds(
        lambda recs, rate, inf, exp: B.sflow_flow_sample(recs, rate=rate, in_if=inf, expanded=exp),
        st.lists(record, max_size=4),
        st.integers(1, 2**32 - 1),
        st.integers(0, 2**30 - 1),
        st.booleans(),
    )
    return st.one_of(flow, st.just(B.sflow_counter_sample()))


@FUZZ
@given(st.lists(st.lists(_sample_strategy(), max_size=6), min_size=1, max_size=5))
def test_sflow_vectorised_walk_equals_scalar_reference(datagrams):
    import numpy as np

    from aupguard.flows.decode import sflow, sflow_vec
    from aupguard.flows.decode.stats import DecodeStats

    items = [(B.sflow(s, seq=i), EXP, 1000 + i) for i, s in enumerate(datagrams)]
    sa, sb = DecodeStats(), DecodeStats()
    a = sflow.collect_samples(items, sa)
    b = sflow_vec.collect_samples_vectorised(items, sb)
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray):
            assert x.shape == y.shape and (x == y).all(), name
        else:
            assert x == y, name
    assert sa.total.as_dict() == sb.total.as_dict()
