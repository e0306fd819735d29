"""NetFlow v5: fixed 24-byte header + 48-byte records, decoded for many datagrams at once."""

from __future__ import annotations

import numpy as np

from aupguard.flows.decode.binary import signed32, u16, u32

HEADER_LEN = 24
RECORD_LEN = 48
RECORD_DTYPE = np.dtype(
    [
        ("src", ">u4"),
        ("dst", ">u4"),
        ("nexthop", ">u4"),
        ("input", ">u2"),
        ("output", ">u2"),
        ("packets", ">u4"),
        ("bytes", ">u4"),
        ("first", ">u4"),
        ("last", ">u4"),
        ("src_port", ">u2"),
        ("dst_port", ">u2"),
        ("pad1", "u1"),
        ("tcp_flags", "u1"),
        ("proto", "u1"),
        ("tos", "u1"),
        ("src_as", ">u2"),
        ("dst_as", ">u2"),
        ("src_mask", "u1"),
        ("dst_mask", "u1"),
        ("pad2", ">u2"),
    ]
)
assert RECORD_DTYPE.itemsize == RECORD_LEN


def parse_headers(buf: np.ndarray, starts: np.ndarray) -> dict[str, np.ndarray]:
    """Header fields of every datagram (all at least HEADER_LEN long)."""
    sampling = u16(buf, starts + 22)
    return {
        "count": u16(buf, starts + 2),
        "uptime": u32(buf, starts + 4),
        "unix_secs": u32(buf, starts + 8),
        "unix_nsecs": u32(buf, starts + 12),
        "sequence": u32(buf, starts + 16),
        "engine": u16(buf, starts + 20),  # engine_type << 8 | engine_id
        "sampling_mode": sampling >> np.uint64(14),
        "sampling_interval": sampling & np.uint64(0x3FFF),
    }


def record_times(
    recs: np.ndarray, hdr: dict[str, np.ndarray], dg: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """first/last switched (sysUptime ms) to UTC ms using each record's datagram header."""
    now_ms = (
        hdr["unix_secs"][dg].astype(np.int64) * 1000
        + hdr["unix_nsecs"][dg].astype(np.int64) // 1_000_000
    )
    uptime = hdr["uptime"][dg].astype(np.int64)
    start = now_ms - signed32(uptime - recs["first"].astype(np.int64))
    end = now_ms - signed32(uptime - recs["last"].astype(np.int64))
    return start, end
