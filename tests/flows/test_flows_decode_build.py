"""Builders of NetFlow v5/v9, IPFIX and sFlow v5 datagrams for the decoder tests (no tests here).

Written from the RFCs / sFlow spec so tests can make exactly the edge cases they
need (lengths that lie, withdrawals, variable-length fields, sampler options).
"""

from __future__ import annotations

import socket
import struct

EXPORT_SECS = 1_700_000_000
UPTIME_MS = 3_600_000


def v4(a: str) -> bytes:
    return socket.inet_aton(a)


def v6(a: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, a)


def flowset(set_id: int, body: bytes, pad_to: int = 1) -> bytes:
    body = body + b"\0" * (-(len(body) + 4) % pad_to)
    return struct.pack(">HH", set_id, len(body) + 4) + body


# ------------------------------------------------------------------ NetFlow v5
V5_REC = struct.Struct(">4s4s4sHHIIIIHHBBBBHHBBH")


def v5_record(
    src="10.0.0.1",
    dst="192.0.2.1",
    sport=1234,
    dport=80,
    proto=6,
    packets=2,
    octets=100,
    first=UPTIME_MS - 5000,
    last=UPTIME_MS - 1000,
    flags=0x18,
    in_if=1,
    out_if=2,
) -> bytes:
    return V5_REC.pack(
        v4(src),
        v4(dst),
        v4("0.0.0.0"),
        in_if,
        out_if,
        packets,
        octets,
        first,
        last,
        sport,
        dport,
        0,
        flags,
        proto,
        0,
        64512,
        64513,
        24,
        16,
        0,
    )


def v5(
    records: list[bytes], count: int | None = None, sampling: int = 0, seq: int = 0, engine: int = 0
) -> bytes:
    hdr = struct.pack(
        ">HHIIIIBBH",
        5,
        len(records) if count is None else count,
        UPTIME_MS,
        EXPORT_SECS,
        0,
        seq,
        engine >> 8,
        engine & 0xFF,
        sampling,
    )
    return hdr + b"".join(records)


# ------------------------------------------------------------------ NetFlow v9
def v9(sets: list[bytes], count: int = 0, seq: int = 0, source_id: int = 0) -> bytes:
    return struct.pack(">HHIIII", 9, count, UPTIME_MS, EXPORT_SECS, seq, source_id) + b"".join(sets)


def v9_template(tid: int, fields: list[tuple[int, int]]) -> bytes:
    return struct.pack(">HH", tid, len(fields)) + b"".join(
        struct.pack(">HH", t, ln) for t, ln in fields
    )


def v9_options_template(
    tid: int, scope: list[tuple[int, int]], options: list[tuple[int, int]]
) -> bytes:
    return struct.pack(">HHH", tid, 4 * len(scope), 4 * len(options)) + b"".join(
        struct.pack(">HH", t, ln) for t, ln in scope + options
    )


# the 5-tuple + counters + uptime stamps template most tests use
BASIC_V9 = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (2, 4), (1, 4), (22, 4), (21, 4)]


def basic_record(
    src="10.0.0.1",
    dst="192.0.2.1",
    sport=1234,
    dport=80,
    proto=6,
    flags=0x18,
    packets=2,
    octets=100,
    first=UPTIME_MS - 5000,
    last=UPTIME_MS - 1000,
) -> bytes:
    return (
        v4(src)
        + v4(dst)
        + struct.pack(">HHBBIIII", sport, dport, proto, flags, packets, octets, first, last)
    )


# ---------------------------------------------------------------------- IPFIX
def ipfix(
    sets: list[bytes],
    domain: int = 0,
    seq: int = 0,
    export: int = EXPORT_SECS,
    length: int | None = None,
) -> bytes:
    body = b"".join(sets)
    return (
        struct.pack(">HHIII", 10, 16 + len(body) if length is None else length, export, seq, domain)
        + body
    )


def ipfix_template(tid: int, fields: list[tuple]) -> bytes:
    out = struct.pack(">HH", tid, len(fields))
    for f in fields:
        if len(f) == 3:  # enterprise-specific
            out += struct.pack(">HHI", f[0] | 0x8000, f[1], f[2])
        else:
            out += struct.pack(">HH", f[0], f[1])
    return out


def ipfix_options_template(tid: int, scope: list[tuple], options: list[tuple]) -> bytes:
    fields = ipfix_template(tid, scope + options)
    return fields[:4] + struct.pack(">H", len(scope)) + fields[4:]


def varlen(value: bytes, long: bool = False) -> bytes:
    if long or len(value) >= 255:
        return b"\xff" + struct.pack(">H", len(value)) + value
    return bytes([len(value)]) + value


# ---------------------------------------------------------------------- sFlow
def sflow(
    samples: list[bytes], agent: str = "192.0.2.9", sub_agent: int = 0, seq: int = 1
) -> bytes:
    return struct.pack(">II4sIIII", 5, 1, v4(agent), sub_agent, seq, 1000, len(samples)) + b"".join(
        samples
    )


def sflow_flow_sample(
    records: list[bytes], rate: int = 1000, in_if: int = 3, out_if: int = 4, expanded: bool = False
) -> bytes:
    if expanded:
        body = struct.pack(">11I", 1, 0, 7, rate, 0, 0, 0, in_if, 0, out_if, len(records))
        kind = 3
    else:
        body = struct.pack(">8I", 1, 7, rate, 0, 0, in_if, out_if, len(records))
        kind = 1
    body += b"".join(records)
    return struct.pack(">II", kind, len(body)) + body


def sflow_counter_sample() -> bytes:
    body = struct.pack(">III", 1, 7, 0)
    return struct.pack(">II", 2, len(body)) + body


def sflow_raw_header(frame: bytes, frame_length: int | None = None, protocol: int = 1) -> bytes:
    pad = frame + b"\0" * (-len(frame) % 4)
    body = struct.pack(">IIII", protocol, frame_length or len(frame) + 4, 4, len(frame)) + pad
    return struct.pack(">II", 1, len(body)) + body


def ether_ipv4_tcp(
    src="10.1.1.1",
    dst="192.0.2.7",
    sport=40000,
    dport=443,
    flags=0x12,
    vlan: int | None = None,
    payload: bytes = b"",
) -> bytes:
    tcp = struct.pack(">HHIIBBHHH", sport, dport, 0, 0, 5 << 4, flags, 1000, 0, 0) + payload
    ip = (
        struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, v4(src), v4(dst)) + tcp
    )
    eth = b"\x02" * 6 + b"\x04" * 6
    if vlan is not None:
        eth += struct.pack(">HH", 0x8100, vlan)
    return eth + struct.pack(">H", 0x0800) + ip


def ether_ipv6_udp(
    src="2001:db8::1", dst="2001:db8::2", sport=5353, dport=53, payload: bytes = b"hello"
) -> bytes:
    udp = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(">IHBB16s16s", 6 << 28, len(udp), 17, 64, v6(src), v6(dst)) + udp
    return b"\x02" * 6 + b"\x04" * 6 + struct.pack(">H", 0x86DD) + ip


def ether_ipv4_icmp(src="10.1.1.1", dst="192.0.2.7", icmp_type=8, code=0) -> bytes:
    icmp = struct.pack(">BBHHH", icmp_type, code, 0, 1, 1)
    ip = (
        struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0, v4(src), v4(dst))
        + icmp
    )
    return b"\x02" * 6 + b"\x04" * 6 + struct.pack(">H", 0x0800) + ip
