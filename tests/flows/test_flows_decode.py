"""Decoder behaviour on hand-built datagrams: every version, sampling, templates, held data,
variable-length fields, times, and malformed input (counted, never raised)."""

from __future__ import annotations

import struct

import pyarrow as pa
import pytest

from aupguard.flows.decode import Decoder
from aupguard.flows.schema import FLOW_SCHEMA
from aupguard.netaddr import format_address
from tests.flows import test_flows_decode_build as B

EXP = "192.0.2.200"
NOW_MS = B.EXPORT_SECS * 1000


def rows(batches: list[pa.RecordBatch]) -> list[dict]:
    for b in batches:
        assert b.schema == FLOW_SCHEMA
        b.validate(full=True)
    return [r for b in batches for r in b.to_pylist()]


def ms(dt) -> int:
    return int(dt.timestamp() * 1000)


# ------------------------------------------------------------------------- v5
def test_v5_fields_times_and_header_sampling():
    dec = Decoder()
    d = B.v5(
        [B.v5_record(packets=3, octets=300), B.v5_record(src="10.0.0.2", proto=17, flags=0)],
        sampling=(1 << 14) | 100,
        engine=0x0102,
    )
    out = rows(dec.feed(d, EXP, 0))
    assert len(out) == 2
    r = out[0]
    assert (
        format_address(r["src_addr"]) == "10.0.0.1" and format_address(r["dst_addr"]) == "192.0.2.1"
    )
    assert (r["src_port"], r["dst_port"], r["proto"], r["tcp_flags"]) == (1234, 80, 6, 0x18)
    assert (r["packets_raw"], r["bytes_raw"], r["sampling_rate"]) == (3, 300, 100)
    assert (r["packets"], r["bytes"]) == (300, 30000)
    assert ms(r["start"]) == NOW_MS - 5000 and ms(r["end"]) == NOW_MS - 1000
    assert (r["src_as"], r["dst_as"], r["src_mask"], r["dst_mask"]) == (64512, 64513, 24, 16)
    assert r["obs_domain"] == 0x0102 and r["flow_version"] == 5
    assert format_address(r["exporter"]) == EXP
    assert dec.stats[EXP].records == 2 and dec.stats[EXP].datagrams == 1


def test_v5_override_wins_and_default_applies():
    dec = Decoder(default_sampling=10, sampling_overrides={EXP: 512})
    d = B.v5([B.v5_record()], sampling=100)
    assert rows(dec.feed(d, EXP, 0))[0]["sampling_rate"] == 512
    assert rows(dec.feed(B.v5([B.v5_record()]), "192.0.2.201", 0))[0]["sampling_rate"] == 10


def test_v5_count_that_lies_is_counted_and_whole_records_kept():
    dec = Decoder()
    d = B.v5([B.v5_record(), B.v5_record()], count=30)
    assert len(rows(dec.feed(d, EXP, 0))) == 2
    assert dec.stats[EXP].errors == {"truncated_records": 28}


def test_v5_sequence_gaps_counted():
    dec = Decoder()
    dec.feed(B.v5([B.v5_record()] * 2, seq=100), EXP, 0)
    dec.feed(B.v5([B.v5_record()] * 2, seq=102), EXP, 0)  # expected
    dec.feed(B.v5([B.v5_record()] * 2, seq=110), EXP, 0)  # 6 flows lost
    assert dec.stats[EXP].sequence_gaps == 6


# ------------------------------------------------------------------------- v9
def test_v9_template_then_data_and_uptime_times():
    dec = Decoder()
    t = B.flowset(0, B.v9_template(300, B.BASIC_V9))
    data = B.flowset(300, B.basic_record() + B.basic_record(src="10.0.0.9", packets=7))
    out = rows(dec.feed(B.v9([t, data]), EXP, 0))
    assert [format_address(r["src_addr"]) for r in out] == ["10.0.0.1", "10.0.0.9"]
    assert ms(out[0]["start"]) == NOW_MS - 5000 and ms(out[0]["end"]) == NOW_MS - 1000
    assert out[1]["packets"] == 7 and out[1]["flow_version"] == 9
    assert out[0]["next_hop"] is None and out[0]["in_if"] is None  # not exported: null
    assert dec.stats[EXP].templates == 1


def test_v9_trusts_flowset_length_not_header_count_and_tolerates_odd_padding():
    dec = Decoder()
    t = B.flowset(0, B.v9_template(300, B.BASIC_V9))
    data = B.flowset(
        300, B.basic_record() * 3 + b"\0\0\0"
    )  # padded to a length not a multiple of 4
    assert len(data) % 4 == 1
    out = rows(dec.feed(B.v9([t, data], count=1), EXP, 0))
    assert len(out) == 3
    assert dec.stats.total.errors == {}


def test_data_before_template_is_held_then_released():
    dec = Decoder()
    data = B.v9([B.flowset(300, B.basic_record() * 4)], source_id=7)
    assert dec.feed(data, EXP, 0) == []
    assert dec.pending_records() > 0 and dec.stats[EXP].pending > 0
    out = rows(dec.feed(B.v9([B.flowset(0, B.v9_template(300, B.BASIC_V9))], source_id=7), EXP, 0))
    assert len(out) == 4 and all(r["obs_domain"] == 7 for r in out)
    assert dec.pending_records() == 0 and dec.stats[EXP].pending == 0


def test_pending_is_bounded_and_overflow_counted():
    dec = Decoder(max_pending=100)
    for _ in range(50):
        dec.feed(B.v9([B.flowset(300, B.basic_record() * 10)]), EXP, 0)
    assert dec.pending_records() <= 100
    assert dec.stats[EXP].errors["pending_overflow"] > 0
    assert dec.stats[EXP].dropped_pending > 0


def test_templates_are_keyed_by_exporter_and_domain():
    dec = Decoder()
    other = [
        (12, 4),
        (8, 4),
        (7, 2),
        (11, 2),
        (4, 1),
        (6, 1),
        (2, 4),
        (1, 4),
        (22, 4),
        (21, 4),
    ]  # src/dst swapped
    dec.feed(B.v9([B.flowset(0, B.v9_template(300, B.BASIC_V9))]), "192.0.2.1", 0)
    dec.feed(B.v9([B.flowset(0, B.v9_template(300, other))]), "192.0.2.2", 0)
    dec.feed(B.v9([B.flowset(0, B.v9_template(300, other))], source_id=5), "192.0.2.1", 0)
    rec = B.basic_record(src="10.0.0.1", dst="10.9.9.9")
    a = rows(dec.feed(B.v9([B.flowset(300, rec)]), "192.0.2.1", 0))
    b = rows(dec.feed(B.v9([B.flowset(300, rec)]), "192.0.2.2", 0))
    c = rows(dec.feed(B.v9([B.flowset(300, rec)], source_id=5), "192.0.2.1", 0))
    assert format_address(a[0]["src_addr"]) == "10.0.0.1"
    assert format_address(b[0]["src_addr"]) == "10.9.9.9"
    assert format_address(c[0]["src_addr"]) == "10.9.9.9"


def test_template_redefined_inside_one_batch_decodes_each_part_with_its_own_template():
    dec = Decoder()
    first = B.v9(
        [
            B.flowset(0, B.v9_template(300, B.BASIC_V9)),
            B.flowset(300, B.basic_record(src="10.0.0.1")),
        ]
    )
    swapped = [(12, 4), (8, 4)] + B.BASIC_V9[2:]
    second = B.v9(
        [
            B.flowset(0, B.v9_template(300, swapped)),
            B.flowset(300, B.basic_record(src="10.0.0.2", dst="10.0.0.3")),
        ]
    )
    out = rows(dec.feed_many([(first, EXP, 0), (second, EXP, 0)]))
    assert sorted((format_address(r["src_addr"]), format_address(r["dst_addr"])) for r in out) == [
        ("10.0.0.1", "192.0.2.1"),
        ("10.0.0.3", "10.0.0.2"),
    ]


def test_v9_options_sampler_id_sets_the_rate_of_its_flows():
    dec = Decoder(default_sampling=1)
    opt = B.flowset(1, B.v9_options_template(400, [(1, 4)], [(48, 1), (49, 1), (50, 4)]))
    opt_data = B.flowset(
        400, struct.pack(">IBBI", 0, 1, 2, 1000) + struct.pack(">IBBI", 0, 2, 2, 64), pad_to=4
    )
    tmpl = B.flowset(0, B.v9_template(300, B.BASIC_V9 + [(48, 1)]))
    data = B.flowset(
        300, B.basic_record() + b"\x01" + B.basic_record() + b"\x02" + B.basic_record() + b"\x09"
    )
    out = rows(dec.feed(B.v9([opt, opt_data, tmpl, data]), EXP, 0))
    assert [r["sampling_rate"] for r in out] == [1000, 64, 1]
    assert [r["packets"] for r in out] == [2000, 128, 2]
    assert dec.stats[EXP].options_records == 2


def test_inline_sampling_interval_ie34_huawei():
    dec = Decoder()
    tmpl = B.flowset(0, B.v9_template(300, B.BASIC_V9 + [(34, 4), (35, 1)]))
    data = B.flowset(300, B.basic_record() + struct.pack(">IB", 2048, 2))
    out = rows(dec.feed(B.v9([tmpl, data]), EXP, 0))
    assert (
        out[0]["sampling_rate"] == 2048
        and out[0]["bytes"] == 100 * 2048
        and out[0]["bytes_raw"] == 100
    )


# ---------------------------------------------------------------------- IPFIX
def test_ipfix_ipv6_exporter_variable_length_and_enterprise_fields():
    dec = Decoder()
    fields = [
        (27, 16),
        (28, 16),
        (82, 65535),
        (7, 2),
        (11, 2),
        (4, 1),
        (99, 6, 9),
        (100, 65535, 9),
        (2, 8),
        (1, 8),
        (152, 8),
        (153, 8),
    ]
    t = B.flowset(2, B.ipfix_template(256, fields))
    rec = (
        B.v6("2001:db8::1")
        + B.v6("2001:db8::2")
        + B.varlen(b"Gi0/0/1")
        + struct.pack(">HHB", 5000, 53, 17)
        + b"ENTERP"
        + B.varlen(b"x" * 300)
        + struct.pack(">QQQQ", 1, 90, NOW_MS - 10, NOW_MS - 5)
    )
    rec2 = (
        B.v6("2001:db8::3")
        + B.v6("2001:db8::4")
        + B.varlen(b"", long=True)
        + struct.pack(">HHB", 1, 2, 6)
        + b"ENTERP"
        + B.varlen(b"")
        + struct.pack(">QQQQ", 3, 4000, NOW_MS - 7, NOW_MS - 1)
    )
    out = rows(dec.feed(B.ipfix([t, B.flowset(256, rec + rec2)], domain=3), "2001:db8:ffff::1", 0))
    assert [format_address(r["src_addr"]) for r in out] == ["2001:db8::1", "2001:db8::3"]
    assert [(r["src_port"], r["dst_port"], r["proto"]) for r in out] == [(5000, 53, 17), (1, 2, 6)]
    assert [(r["packets_raw"], r["bytes_raw"]) for r in out] == [(1, 90), (3, 4000)]
    assert [ms(r["start"]) for r in out] == [NOW_MS - 10, NOW_MS - 7]
    assert format_address(out[0]["exporter"]) == "2001:db8:ffff::1" and out[0]["obs_domain"] == 3
    assert dec.stats.total.errors == {}


@pytest.mark.parametrize(
    "fields,value,expect_start",
    [
        (
            [(150, 4), (151, 4)],
            struct.pack(">II", B.EXPORT_SECS - 60, B.EXPORT_SECS - 30),
            NOW_MS - 60_000,
        ),
        ([(158, 4), (159, 4)], struct.pack(">II", 2_500_000, 1_000_000), NOW_MS - 2500),
        (
            [(156, 8), (157, 8)],
            struct.pack(">II", B.EXPORT_SECS + 2_208_988_800, 1 << 31)
            + struct.pack(">II", B.EXPORT_SECS + 2_208_988_800, 0),
            NOW_MS + 500,
        ),
    ],
)
def test_ipfix_time_encodings(fields, value, expect_start):
    dec = Decoder()
    t = B.flowset(2, B.ipfix_template(256, [(8, 4), (12, 4)] + fields))
    out = rows(
        dec.feed(B.ipfix([t, B.flowset(256, B.v4("10.0.0.1") + B.v4("10.0.0.2") + value)]), EXP, 0)
    )
    assert ms(out[0]["start"]) == expect_start


def test_ipfix_uptime_with_system_init_time_option():
    dec = Decoder()
    opt_t = B.flowset(3, B.ipfix_options_template(300, [(149, 4)], [(160, 8)]))
    opt_d = B.flowset(300, struct.pack(">IQ", 0, NOW_MS - 100_000))
    t = B.flowset(2, B.ipfix_template(256, [(8, 4), (12, 4), (22, 4), (21, 4)]))
    d = B.flowset(256, B.v4("10.0.0.1") + B.v4("10.0.0.2") + struct.pack(">II", 40_000, 45_000))
    out = rows(dec.feed(B.ipfix([opt_t, opt_d, t, d]), EXP, 0))
    assert ms(out[0]["start"]) == NOW_MS - 60_000 and ms(out[0]["end"]) == NOW_MS - 55_000


def test_ipfix_sampling_options_population_and_packet_interval():
    dec = Decoder()
    opt_t = B.flowset(3, B.ipfix_options_template(300, [(302, 4)], [(305, 4), (306, 4)]))
    opt_d = B.flowset(300, struct.pack(">III", 5, 1, 99))
    t = B.flowset(2, B.ipfix_template(256, [(8, 4), (12, 4), (302, 4), (2, 4)]))
    d = B.flowset(256, B.v4("10.0.0.1") + B.v4("10.0.0.2") + struct.pack(">II", 5, 3))
    out = rows(dec.feed(B.ipfix([opt_t, opt_d, t, d]), EXP, 0))
    assert out[0]["sampling_rate"] == 100 and out[0]["packets"] == 300


def test_ipfix_template_withdrawal_holds_later_data():
    dec = Decoder()
    t = B.flowset(2, B.ipfix_template(256, [(8, 4), (12, 4)]))
    rec = B.flowset(256, B.v4("10.0.0.1") + B.v4("10.0.0.2"))
    assert len(rows(dec.feed(B.ipfix([t, rec]), EXP, 0))) == 1
    dec.feed(B.ipfix([B.flowset(2, struct.pack(">HH", 256, 0))]), EXP, 0)  # withdraw 256
    assert dec.stats[EXP].templates == 0
    assert dec.feed(B.ipfix([rec]), EXP, 0) == []
    assert dec.pending_records() > 0
    assert len(rows(dec.feed(B.ipfix([t]), EXP, 0))) == 1  # back: released


# ---------------------------------------------------------------------- sFlow
def test_sflow_samples_headers_vlan_ipv6_icmp_and_counters():
    dec = Decoder()
    samples = [
        B.sflow_flow_sample(
            [B.sflow_raw_header(B.ether_ipv4_tcp(vlan=42), frame_length=1514)], rate=2000
        ),
        B.sflow_flow_sample(
            [B.sflow_raw_header(B.ether_ipv6_udp())], rate=512, expanded=True, in_if=70000
        ),
        B.sflow_flow_sample([B.sflow_raw_header(B.ether_ipv4_icmp(icmp_type=3, code=1))], rate=1),
        B.sflow_counter_sample(),
    ]
    out = rows(dec.feed(B.sflow(samples, sub_agent=4), EXP, 1234))
    assert len(out) == 3
    a, b, c = out
    assert (
        format_address(a["src_addr"]),
        a["src_port"],
        a["dst_port"],
        a["proto"],
        a["tcp_flags"],
    ) == ("10.1.1.1", 40000, 443, 6, 0x12)
    assert (a["bytes_raw"], a["bytes"], a["packets"], a["sampling_rate"]) == (
        1514,
        1514 * 2000,
        2000,
        2000,
    )
    assert (format_address(b["dst_addr"]), b["dst_port"], b["proto"], b["in_if"]) == (
        "2001:db8::2",
        53,
        17,
        70000,
    )
    assert (c["proto"], c["src_port"], c["dst_port"]) == (1, 0, 3 * 256 + 1)
    assert all(ms(r["start"]) == 1234 == ms(r["end"]) and r["obs_domain"] == 4 for r in out)
    assert dec.stats[EXP].counter_samples == 1


# ------------------------------------------------------------------ malformed
@pytest.mark.parametrize(
    "datagram,kind",
    [
        (b"", "truncated_header"),
        (b"\x00\x05\x00", "truncated_header"),
        (b"\x00\x05" + b"\0" * 10, "truncated_header"),
        (b"\x00\x09" + b"\0" * 10, "truncated_header"),
        (b"\x00\x0a" + b"\0" * 10, "truncated_header"),
        (b"\x00\x07" + b"\0" * 40, "unknown_version"),
        (b"\xff\xff" + b"\0" * 40, "unknown_version"),
        (B.ipfix([], length=4000), "length_mismatch"),
        (B.ipfix([], length=3), "length_mismatch"),
        (B.v9([struct.pack(">HH", 300, 2000) + b"\0" * 20]), "set_length"),
        (B.v9([struct.pack(">HH", 300, 0) + b"\0" * 20]), "set_length"),
        (B.v9([struct.pack(">HH", 300, 2)]), "set_length"),
        (B.v9([B.flowset(5, b"\0" * 8)]), "reserved_set_id"),
        (B.v9([B.flowset(0, struct.pack(">HH", 300, 60000))]), "template_truncated"),
        (B.v9([B.flowset(0, B.v9_template(300, [(8, 0), (12, 0)]))]), "bad_template"),
        (B.v9([B.flowset(0, B.v9_template(300, [(8, 65000), (12, 65000)]))]), "bad_template"),
        (B.v9([B.flowset(0, B.v9_template(12, B.BASIC_V9))]), "bad_template_id"),
        (B.ipfix([B.flowset(3, B.ipfix_options_template(300, [], [(8, 4)]))]), "bad_template"),
        (B.sflow([b"\0" * 4]), "sflow_truncated"),
        (B.sflow([struct.pack(">II", 1, 5000)]), "sflow_sample_length"),
        (
            struct.pack(">II4sIIII", 5, 1, B.v4("1.2.3.4"), 0, 1, 1, 1_000_000),
            "sflow_too_many_samples",
        ),
        (struct.pack(">II", 5, 7) + b"\0" * 40, "sflow_bad_address_type"),
    ],
)
def test_malformed_input_is_counted_never_raised(datagram, kind):
    dec = Decoder()
    assert dec.feed(datagram, EXP, 0) == []
    assert dec.stats[EXP].errors.get(kind, 0) >= 1, dec.stats[EXP].errors
    assert dec.stats[EXP].datagrams == 1


def test_huge_field_and_truncated_varlen_do_not_crash():
    dec = Decoder()
    t = B.flowset(2, B.ipfix_template(256, [(8, 4), (82, 65535)]))
    bad = B.flowset(256, B.v4("10.0.0.1") + b"\xff\xff\xff" + b"x" * 10)  # says 65535 bytes follow
    assert dec.feed(B.ipfix([t, bad]), EXP, 0) == []
    assert dec.stats[EXP].errors == {"varlen_truncated": 1}
    t2 = B.flowset(0, B.v9_template(301, [(8, 4), (90, 60000)]))  # one record cannot fit
    assert dec.feed(B.v9([t2, B.flowset(301, b"\0" * 100)]), EXP, 0) == []
    assert dec.stats[EXP].records == 0


def test_a_bad_datagram_does_not_spoil_the_good_ones_in_its_batch():
    dec = Decoder()
    good = B.v5([B.v5_record()])
    out = rows(
        dec.feed_many(
            [(good, EXP, 0), (b"\x00\x05junk", EXP, 0), (good, EXP, 0), (b"\x00\x63" * 9, EXP, 0)]
        )
    )
    assert len(out) == 2
    assert dec.stats[EXP].errors == {"truncated_header": 1, "unknown_version": 1}
    assert dec.stats[EXP].datagrams == 4


def test_stats_as_dict_and_bad_exporter():
    dec = Decoder()
    dec.feed(B.v5([B.v5_record()]), "not-an-address", 0)
    d = dec.stats.as_dict()
    assert d["total"]["errors"] == {"bad_exporter": 1}
    assert d["exporters"]["not-an-address"]["datagrams"] == 1


def test_ipfix_withdrawal_inside_one_batch_applies_from_that_datagram_on():
    dec = Decoder()
    t = B.flowset(2, B.ipfix_template(256, [(8, 4), (12, 4)]))
    rec = B.flowset(256, B.v4("10.0.0.1") + B.v4("10.0.0.2"))
    withdraw = B.flowset(2, struct.pack(">HH", 256, 0))
    batch = [
        (B.ipfix([t, rec]), EXP, 0),
        (B.ipfix([rec, withdraw]), EXP, 0),
        (B.ipfix([rec]), EXP, 0),
    ]
    assert len(rows(dec.feed_many(batch))) == 2  # the third datagram's record waits
    assert dec.pending_records() > 0 and dec.stats[EXP].templates == 0


def test_sflow_sampled_ipv4_record_and_sequence_gaps():
    dec = Decoder()
    sampled = struct.pack(">II", 3, 32) + struct.pack(
        ">II4s4sIIII", 400, 17, B.v4("10.5.5.5"), B.v4("10.6.6.6"), 1111, 2222, 0, 0
    )
    out = rows(dec.feed(B.sflow([B.sflow_flow_sample([sampled], rate=100)], seq=10), EXP, 0))
    assert (
        format_address(out[0]["src_addr"]),
        out[0]["src_port"],
        out[0]["dst_port"],
        out[0]["proto"],
    ) == ("10.5.5.5", 1111, 2222, 17)
    assert (out[0]["bytes_raw"], out[0]["bytes"]) == (400, 40000)
    dec.feed(B.sflow([], seq=11), EXP, 0)
    dec.feed(B.sflow([], seq=15), EXP, 0)
    assert dec.stats[EXP].sequence_gaps == 3


def test_dual_stack_template_picks_the_family_in_use_per_record():
    dec = Decoder()
    t = B.flowset(
        2, B.ipfix_template(256, [(8, 4), (12, 4), (27, 16), (28, 16), (15, 4), (62, 16)])
    )
    z4, z6 = B.v4("0.0.0.0"), bytes(16)
    r4 = B.v4("10.0.0.1") + B.v4("10.0.0.2") + z6 + z6 + B.v4("10.0.0.254") + z6
    r6 = z4 + z4 + B.v6("2001:db8::1") + B.v6("2001:db8::2") + z4 + B.v6("2001:db8::fe")
    out = rows(dec.feed(B.ipfix([t, B.flowset(256, r4 + r6)]), EXP, 0))
    got = [tuple(format_address(r[k]) for k in ("src_addr", "dst_addr", "next_hop")) for r in out]
    assert got == [
        ("10.0.0.1", "10.0.0.2", "10.0.0.254"),
        ("2001:db8::1", "2001:db8::2", "2001:db8::fe"),
    ]


def test_held_data_of_many_spoofed_exporters_is_bounded_in_total():
    dec = Decoder(max_pending=100)
    for i in range(200):
        dec.feed(
            B.v9([B.flowset(300, B.basic_record() * 10)], source_id=i),
            f"10.9.{i // 250}.{i % 250}",
            0,
        )
    assert dec.pending_records() <= 16 * 100
    assert dec.stats.total.dropped_pending > 0
    assert dec.stats.total.pending == dec.pending_records()


def test_template_of_only_variable_length_fields_does_not_crash():
    """Found by the atheris target: records with no fixed bytes at all."""
    dec = Decoder()
    t = B.flowset(2, B.ipfix_template(256, [(82, 65535), (83, 65535)]))
    data = B.flowset(256, B.varlen(b"eth0") + B.varlen(b"uplink") + B.varlen(b"") + B.varlen(b"x"))
    out = rows(dec.feed(B.ipfix([t, data]), EXP, 0))
    assert len(out) == 2 and dec.stats[EXP].errors == {}
    assert all(r["src_addr"] == bytes(16) and r["packets"] == 0 for r in out)
