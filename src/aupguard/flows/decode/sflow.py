"""sFlow v5: flow samples and expanded flow samples to flow records.

This module holds the sample table (``Samples``), the vectorised parser of
sampled packet headers (Ethernet, 802.1Q, IPv4, IPv6, TCP, UDP, ICMP: all
headers of a batch in one (n, 128) byte matrix) and ``collect_samples``, a
scalar walk of the XDR structure kept as the readable reference. The decoder
uses the vectorised walk in ``sflow_vec``; a hypothesis test holds the two equal.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from aupguard.flows.decode.columns import v4_to_addr16
from aupguard.flows.decode.stats import DecodeStats

HEADER_BYTES = 128  # sampled header bytes kept (covers L2 + tags + IPv6 + L4)
MAX_SAMPLES = 1024  # per datagram; bounds work on hostile input
MAX_RECORDS = 256  # per sample
_V4MAP = bytes(10) + b"\xff\xff"


@dataclass
class Samples:
    count: int
    exporters: list[str]
    exporter_idx: np.ndarray
    recv_ms: np.ndarray
    rate: np.ndarray
    sub_agent: np.ndarray
    in_if: np.ndarray
    out_if: np.ndarray
    frame_length: np.ndarray
    header_proto: np.ndarray  # 1 Ethernet, 11 IPv4, 12 IPv6, 0 none
    headers: np.ndarray  # (n, HEADER_BYTES) uint8
    header_len: np.ndarray
    # from sampled IPv4/IPv6 records (format 3/4), used when no raw header
    s_valid: np.ndarray
    s_src: np.ndarray
    s_dst: np.ndarray
    s_sport: np.ndarray
    s_dport: np.ndarray
    s_proto: np.ndarray
    s_flags: np.ndarray
    has_gateway: np.ndarray
    src_as: np.ndarray
    dst_as: np.ndarray

    def exporter_is(self, exporter: str) -> np.ndarray:
        if exporter not in self.exporters:
            return np.zeros(self.count, dtype=bool)
        return self.exporter_idx == self.exporters.index(exporter)


class _Bad(Exception):
    """A length or count in the datagram that does not fit (kind in args[0])."""


def _addr(data: bytes, pos: int) -> tuple[bytes, int]:
    (kind,) = struct.unpack_from(">I", data, pos)
    if kind == 1:
        return _V4MAP + data[pos + 4 : pos + 8], pos + 8
    if kind == 2:
        return data[pos + 4 : pos + 20], pos + 20
    if kind == 0:
        return bytes(16), pos + 4
    raise _Bad("bad_address_type")


def collect_samples(items: list, stats: DecodeStats, check_sequence=None) -> Samples:
    """Walk every datagram; ``check_sequence(key, seq, advance)`` counts datagram sequence gaps."""
    rows: list[tuple] = []
    exporters: dict[str, int] = {}
    for data, exporter, received_ms in items:
        try:
            _datagram(data, exporter, received_ms, exporters, rows, stats, check_sequence)
        except (_Bad, struct.error, IndexError) as exc:
            kind = exc.args[0] if isinstance(exc, _Bad) else "truncated"
            stats.error(exporter, f"sflow_{kind}", f"sFlow datagram of {len(data)} bytes")
    n = len(rows)
    cols = list(zip(*rows)) if rows else [()] * 20
    u32 = lambda i: np.array(cols[i], dtype=np.int64)
    headers = b"".join(h[:HEADER_BYTES].ljust(HEADER_BYTES, b"\0") for h in cols[9])
    return Samples(
        count=n,
        exporters=list(exporters),
        exporter_idx=np.array(cols[0], dtype=np.int64),
        recv_ms=u32(1),
        rate=u32(2),
        sub_agent=u32(3),
        in_if=u32(4),
        out_if=u32(5),
        frame_length=u32(6),
        header_proto=u32(7),
        header_len=np.minimum(u32(8), HEADER_BYTES),
        headers=np.frombuffer(headers, dtype=np.uint8).reshape(n, HEADER_BYTES),
        s_valid=np.array(cols[10], dtype=bool),
        s_src=np.frombuffer(b"".join(cols[11]), dtype=np.uint8).reshape(n, 16),
        s_dst=np.frombuffer(b"".join(cols[12]), dtype=np.uint8).reshape(n, 16),
        s_sport=u32(13),
        s_dport=u32(14),
        s_proto=u32(15),
        s_flags=u32(16),
        has_gateway=np.array(cols[17], dtype=bool),
        src_as=u32(18),
        dst_as=u32(19),
    )


def _datagram(
    data: bytes,
    exporter: str,
    received_ms: int,
    exporters: dict,
    rows: list,
    stats: DecodeStats,
    check_sequence=None,
) -> None:
    agent, pos = _addr(data, 4)
    sub_agent, seq, _uptime, nsamples = struct.unpack_from(">IIII", data, pos)
    pos += 16
    if check_sequence is not None:
        check_sequence((exporter, 105, agent, sub_agent), seq, 1)
    if nsamples > MAX_SAMPLES:
        raise _Bad("too_many_samples")
    st = stats.for_exporter(exporter)
    ei = exporters.setdefault(exporter, len(exporters))
    end = len(data)
    new: list[tuple] = []
    for _ in range(nsamples):
        fmt, length = struct.unpack_from(">II", data, pos)
        pos += 8
        if length > end - pos:
            raise _Bad("sample_length")
        body_end = pos + length
        enterprise, kind = fmt >> 12, fmt & 0xFFF
        if enterprise == 0 and kind in (1, 3):
            new.append(_flow_sample(data, pos, body_end, kind == 3, ei, received_ms, sub_agent))
        elif enterprise == 0 and kind in (2, 4):
            st.counter_samples += 1
        pos = body_end
    rows.extend(new)  # only whole datagrams: a bad one adds nothing


def _flow_sample(
    data: bytes, pos: int, end: int, expanded: bool, ei: int, received_ms: int, sub_agent: int
) -> tuple:
    if expanded:
        _seq, _stype, _sidx, rate, _pool, _drops, _ifmt, in_if, _ofmt, out_if, nrec = (
            struct.unpack_from(">11I", data, pos)
        )
        pos += 44
    else:
        _seq, _source, rate, _pool, _drops, in_if, out_if, nrec = struct.unpack_from(
            ">8I", data, pos
        )
        pos += 32
        in_if &= 0x3FFFFFFF  # top 2 bits: format (discarded/multiple), not the index
        out_if &= 0x3FFFFFFF
    if nrec > MAX_RECORDS:
        raise _Bad("too_many_records")
    frame_len, hproto, hlen, header = 0, 0, 0, b""
    s = [False, bytes(16), bytes(16), 0, 0, 0, 0]
    gw, src_as, dst_as = False, 0, 0
    for _ in range(nrec):
        fmt, length = struct.unpack_from(">II", data, pos)
        pos += 8
        if length > end - pos:
            raise _Bad("record_length")
        rec_end = pos + length
        if fmt == 1:
            hproto, frame_len, _stripped, hlen = struct.unpack_from(">IIII", data, pos)
            if hlen > length - 16:
                raise _Bad("header_length")
            header = data[pos + 16 : pos + 16 + min(hlen, HEADER_BYTES)]
        elif fmt == 3:
            ln, proto = struct.unpack_from(">II", data, pos)
            sp, dp, fl = struct.unpack_from(">III", data, pos + 16)
            s = [
                True,
                _V4MAP + data[pos + 8 : pos + 12],
                _V4MAP + data[pos + 12 : pos + 16],
                sp,
                dp,
                proto,
                fl,
            ]
            frame_len = frame_len or ln
        elif fmt == 4:
            ln, proto = struct.unpack_from(">II", data, pos)
            sp, dp, fl = struct.unpack_from(">III", data, pos + 40)
            s = [True, data[pos + 8 : pos + 24], data[pos + 24 : pos + 40], sp, dp, proto, fl]
            frame_len = frame_len or ln
        elif fmt == 1003:
            _nh, p = _addr(data, pos)
            _as, src_as, _peer, nseg = struct.unpack_from(">IIII", data, p)
            p += 16
            for _ in range(min(nseg, 64)):
                _stype, cnt = struct.unpack_from(">II", data, p)
                if cnt > (rec_end - p) // 4:
                    raise _Bad("as_path_length")
                if cnt:
                    (dst_as,) = struct.unpack_from(">I", data, p + 8 + 4 * (cnt - 1))
                p += 8 + 4 * cnt
            gw = True
        pos = rec_end
    return (
        ei,
        received_ms,
        rate,
        sub_agent,
        in_if,
        out_if,
        frame_len,
        hproto,
        len(header),
        header,
        *s,
        gw,
        src_as,
        dst_as,
    )


def parse_frames(M: np.ndarray, hl: np.ndarray, kind: np.ndarray) -> dict[str, np.ndarray]:
    """Vectorised L2/L3/L4 parse of sampled headers (rows of M, valid lengths hl).

    kind per row: 1 Ethernet, 11 IPv4, 12 IPv6 (sFlow header protocol numbers).
    """
    n = len(M)
    width = M.shape[1]
    rows = np.arange(n)

    def byte(off: np.ndarray) -> np.ndarray:
        return M[rows, np.minimum(np.maximum(off, 0), width - 1)].astype(np.int64)

    def word(off: np.ndarray) -> np.ndarray:
        return (byte(off) << 8) | byte(off + 1)

    flat = np.ascontiguousarray(M).reshape(-1)

    def take(off: np.ndarray, k: int) -> np.ndarray:
        o = np.minimum(np.maximum(off, 0), width - k)  # 1-D bound first: np.clip on 2-D is slow
        # rows of a sliding-window view: one contiguous copy per row, not k index lookups
        return np.lib.stride_tricks.sliding_window_view(flat, k)[rows * width + o]

    eth = kind == 1
    off = np.where(eth, 14, 0)
    etype = np.where(
        eth, word(np.full(n, 12)), np.where(kind == 11, 0x0800, np.where(kind == 12, 0x86DD, 0))
    )
    for _ in range(2):  # 802.1Q / QinQ tags
        tagged = eth & np.isin(etype, (0x8100, 0x88A8, 0x9100))
        etype = np.where(tagged, word(off + 2), etype)
        off = off + 4 * tagged
    ver = byte(off) >> 4
    v4 = (etype == 0x0800) & (ver == 4) & (off + 20 <= hl)
    v6 = (etype == 0x86DD) & (ver == 6) & (off + 40 <= hl)
    proto = np.where(v4, byte(off + 9), np.where(v6, byte(off + 6), 0))
    l4 = np.where(v4, off + (byte(off) & 0xF) * 4, off + 40)
    frag = v4 & ((word(off + 6) & 0x1FFF) != 0)
    for _ in range(2):  # IPv6 hop-by-hop / routing / destination options
        ext = v6 & np.isin(proto, (0, 43, 60)) & (l4 + 2 <= hl)
        nxt, ln = byte(l4), (byte(l4 + 1) + 1) * 8
        proto = np.where(ext, nxt, proto)
        l4 = np.where(ext, l4 + ln, l4)
    ipok = v4 | v6
    src = np.where(v4[:, None], v4_to_addr16(take(off + 12, 4)), take(off + 8, 16))
    dst = np.where(v4[:, None], v4_to_addr16(take(off + 16, 4)), take(off + 24, 16))
    ported = ipok & ~frag & np.isin(proto, (6, 17, 132)) & (l4 + 4 <= hl)
    icmp = ipok & ~frag & np.isin(proto, (1, 58)) & (l4 + 2 <= hl)
    tcp = ipok & ~frag & (proto == 6) & (l4 + 14 <= hl)
    return {
        "valid": ipok,
        "src_addr": src,
        "dst_addr": dst,
        "src_port": np.where(ported, word(l4), 0),
        "dst_port": np.where(
            ported, word(l4 + 2), np.where(icmp, word(l4), 0)
        ),  # ICMP: type<<8|code
        "proto": proto,
        "tcp_flags": np.where(tcp, byte(l4 + 13) | ((byte(l4 + 12) & 1) << 8), 0),
    }


def frames_matrix(frames: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Pad byte strings into an (n, HEADER_BYTES) matrix plus their lengths."""
    n = len(frames)
    data = b"".join(f[:HEADER_BYTES].ljust(HEADER_BYTES, b"\0") for f in frames)
    lens = np.fromiter((min(len(f), HEADER_BYTES) for f in frames), dtype=np.int64, count=n)
    return np.frombuffer(data, dtype=np.uint8).reshape(n, HEADER_BYTES), lens


def parse_headers(sm: Samples) -> dict[str, np.ndarray]:
    """Columns of every sample: from its raw header, else its sampled IPv4/IPv6 record."""
    p = parse_frames(sm.headers, sm.header_len, sm.header_proto)
    ipok = p["valid"]
    use_s = ~ipok & sm.s_valid
    known = ipok | use_s
    src = np.where(use_s[:, None], sm.s_src, p["src_addr"])
    dst = np.where(use_s[:, None], sm.s_dst, p["dst_addr"])
    return {
        "src_addr": np.where(known[:, None], src, 0).astype(np.uint8),
        "dst_addr": np.where(known[:, None], dst, 0).astype(np.uint8),
        "src_port": np.where(use_s, sm.s_sport, p["src_port"]),
        "dst_port": np.where(use_s, sm.s_dport, p["dst_port"]),
        "proto": np.where(use_s, sm.s_proto, p["proto"]),
        "tcp_flags": np.where(use_s, sm.s_flags, p["tcp_flags"]),
        "src_port_null": ~known,
        "dst_port_null": ~known,
        "proto_null": ~known,
    }
