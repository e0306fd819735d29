"""MRT reader (RFC 6396, RFC 8050 add-path): TABLE_DUMP, TABLE_DUMP_V2, BGP4MP(_ET).

Why hand-written instead of mrtparse: mrtparse builds a nested dict per record
and per attribute; on a full table (~1.2 M prefixes x every peer) that takes
minutes (measured: see docs/routing.md), while the issue asks for well under a
minute. This reader walks the buffer with precompiled ``struct`` formats and
decodes each distinct attribute blob once (a full table shares a few hundred
thousand attribute sets between a million prefixes), so the per-prefix cost is
a dict lookup. It is still a loop per record: MRT records are variable length
and self-delimiting, so they cannot be split into numpy columns without walking
them first; everything after the walk (the RIB, the lookups) is vectorised.

What it keeps: one route per prefix (IPv4 and IPv6 unicast). Among a
TABLE_DUMP_V2 record's entries (one per peer / add-path id) the route with the
shortest AS path wins (an AS_SET counts as one hop, as in BGP best-path), ties
go to the first entry. BGP4MP updates are replayed in order per (peer, prefix,
path id): announcements replace, withdrawals delete; the survivors are then
reduced the same way.

AS_PATH handling (documented in docs/routing.md):
- AS_SEQUENCE members are kept in order (prepends included in ``as_path``).
- AS_SET members are appended to ``as_path`` (sorted, as received) and shown
  as ``{a,b}`` in ``as_path_text``, like bgpdump. If the path ends in an
  AS_SET of more than one AS, the origin is ambiguous: ``origin_as`` is 0.
- AS_CONFED_SEQUENCE / AS_CONFED_SET are confederation-internal (RFC 5065)
  and dropped from ``as_path``; they are shown in brackets in the text form.
- 2-byte sessions (BGP4MP_MESSAGE, TABLE_DUMP v1): AS4_PATH is merged per
  RFC 6793 section 4.2.3.

Bad input: a truncated record stops the read with an :class:`MrtFault` that
names the byte offset; every route read before it is kept. A record whose
length is intact but whose contents do not parse is counted, reported with
its offset, and skipped.
"""

from __future__ import annotations

import bz2
import ipaddress
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aupguard.errors import InputError

HEADER = struct.Struct(">IHHI")
U8 = struct.Struct(">B")
U16 = struct.Struct(">H")
U32 = struct.Struct(">I")

TABLE_DUMP, TABLE_DUMP_V2, BGP4MP, BGP4MP_ET = 12, 13, 16, 17
# TABLE_DUMP_V2 subtypes -> (afi, add-path?)
TDV2_RIB = {2: (1, False), 4: (2, False), 8: (1, True), 10: (2, True)}
TDV2_MULTICAST = {3, 5, 9, 11}
TDV2_GENERIC = {6: False, 12: True}
# BGP4MP subtypes -> (4-byte AS?, add-path?); LOCAL variants (sent by the
# recording speaker itself) are skipped: they are not routes we learnt.
BGP4MP_MESSAGES = {1: (False, False), 4: (True, False), 8: (False, True), 9: (True, True)}
BGP4MP_LOCAL = {6, 7, 10, 11}
BGP4MP_STATE = {0, 5}

ATTR_ORIGIN, ATTR_AS_PATH, ATTR_NEXT_HOP, ATTR_COMMUNITIES = 1, 2, 3, 8
ATTR_MP_REACH, ATTR_MP_UNREACH, ATTR_AS4_PATH, ATTR_LARGE_COMMUNITIES = 14, 15, 17, 32
AS_SET, AS_SEQUENCE, AS_CONFED_SEQUENCE, AS_CONFED_SET = 1, 2, 3, 4

MAX_REPORTED_ERRORS = 100


class MrtRecordError(ValueError):
    """A record whose contents do not parse (its length was intact)."""


@dataclass(frozen=True)
class Attrs:
    """The decoded path attributes one or many routes share."""

    origin_as: int
    as_path: tuple[int, ...]
    as_path_text: str
    communities: tuple[str, ...]
    next_hop: str
    hops: int  # path length for best-route choice (AS_SET = 1)


@dataclass
class MrtFault:
    offset: int
    message: str

    def __str__(self) -> str:
        return f"byte offset {self.offset}: {self.message}"


@dataclass
class MrtResult:
    """Routes read from one MRT file, plus what could not be read."""

    # (family 4|6, network int, prefix length) -> (Attrs, peer text)
    routes: dict[tuple[int, int, int], tuple[Attrs, str]] = field(default_factory=dict)
    records: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    errors: list[MrtFault] = field(default_factory=list)
    error_count: int = 0
    fatal: MrtFault | None = None
    bytes_read: int = 0
    total_bytes: int = 0

    def error(self, offset: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(MrtFault(offset, message))

    def skip(self, what: str) -> None:
        self.skipped[what] = self.skipped.get(what, 0) + 1


def read_bytes(path: Path) -> tuple[bytes, bool]:
    """The MRT file's bytes, decompressing .gz / .bz2 (by magic, not by name), and whether a
    compressed file ended early (what decompressed before the cut is returned)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        dec = zlib.decompressobj(wbits=31)
    elif raw[:3] == b"BZh":
        dec = bz2.BZ2Decompressor()
    else:
        return raw, False
    # Streaming decompressors (not gzip.open): a truncated archive still yields its head.
    chunks = []
    view = memoryview(raw)
    try:
        for i in range(0, len(raw), 1 << 20):
            chunks.append(dec.decompress(view[i:i + (1 << 20)]))
            if dec.eof:
                break
    except (zlib.error, OSError, EOFError) as exc:
        if not chunks:
            raise InputError(f"{path} is not a readable compressed file: {exc}") from None
        return b"".join(chunks), True
    return b"".join(chunks), not dec.eof


# -- attribute decoding --------------------------------------------------------

def _segments(data: memoryview, as4: bool) -> list[tuple[int, list[int]]]:
    segs = []
    pos, n = 0, len(data)
    width = 4 if as4 else 2
    fmt = ">%d" + ("I" if as4 else "H")
    while pos < n:
        if pos + 2 > n:
            raise MrtRecordError("AS_PATH segment header cut short")
        kind, count = data[pos], data[pos + 1]
        pos += 2
        if pos + count * width > n:
            raise MrtRecordError("AS_PATH segment longer than the attribute")
        segs.append((kind, list(struct.unpack_from(fmt % count, data, pos))))
        pos += count * width
    return segs


def _merge_as4(segs: list[tuple[int, list[int]]], segs4: list[tuple[int, list[int]]]):
    """RFC 6793 4.2.3: keep the leading ASes of AS_PATH the AS4_PATH does not cover."""
    def count(ss):
        return sum(1 if k == AS_SET else len(v) for k, v in ss if k in (AS_SET, AS_SEQUENCE))

    extra = count(segs) - count(segs4)
    if extra < 0:
        return segs  # AS4_PATH longer than AS_PATH: ignore it, as the RFC says
    head: list[tuple[int, list[int]]] = []
    for kind, members in segs:
        if extra <= 0:
            break
        if kind == AS_SEQUENCE:
            take = members[:extra]
            head.append((kind, take))
            extra -= len(take)
        elif kind == AS_SET:
            head.append((kind, members))
            extra -= 1
        else:
            head.append((kind, members))
    return head + segs4


def _path_from_segments(segs) -> tuple[int, tuple[int, ...], str, int]:
    if len(segs) == 1 and segs[0][0] == AS_SEQUENCE and segs[0][1]:
        members = segs[0][1]  # the common case, kept cheap
        return members[-1], tuple(members), " ".join(map(str, members)), len(members)
    path: list[int] = []
    text: list[str] = []
    hops = 0
    origin = 0
    for kind, members in segs:
        if kind == AS_SEQUENCE:
            path.extend(members)
            text.extend(str(a) for a in members)
            hops += len(members)
            if members:
                origin = members[-1]
        elif kind == AS_SET:
            path.extend(sorted(set(members)))
            text.append("{" + ",".join(str(a) for a in members) + "}")
            hops += 1
            origin = members[0] if len(set(members)) == 1 else 0
        elif kind in (AS_CONFED_SEQUENCE, AS_CONFED_SET):
            text.append("(" + " ".join(str(a) for a in members) + ")")
        else:
            raise MrtRecordError(f"unknown AS_PATH segment type {kind}")
    return origin, tuple(path), " ".join(text), hops


_ADDRESS_CACHE: dict[bytes, str] = {}


def _address(data: memoryview | bytes) -> str:
    """Next hops and peers repeat endlessly: format each distinct one once."""
    key = bytes(data)
    text = _ADDRESS_CACHE.get(key)
    if text is None:
        text = _format_address(key)
        if len(_ADDRESS_CACHE) < 100_000:
            _ADDRESS_CACHE[key] = text
    return text


def _format_address(data: bytes) -> str:
    if len(data) == 4:
        return str(ipaddress.IPv4Address(bytes(data)))
    if len(data) >= 16:  # 32 bytes: global + link-local; bgpdump shows the global one
        return str(ipaddress.IPv6Address(bytes(data[:16])))
    raise MrtRecordError(f"next hop of {len(data)} bytes")


@dataclass
class ParsedAttrs:
    attrs: Attrs
    mp_reach: tuple[int, int, bytes] | None = None      # afi, safi, NLRI bytes
    mp_unreach: tuple[int, int, bytes] | None = None


def parse_attributes(data: memoryview, as4: bool, table_dump: bool) -> ParsedAttrs:
    """Path attributes of a RIB entry (table_dump: abbreviated MP_REACH) or an UPDATE."""
    pos, n = 0, len(data)
    segs = segs4 = None
    communities: list[str] = []
    next_hop = ""
    mp_reach = mp_unreach = None
    while pos < n:
        if pos + 3 > n:
            raise MrtRecordError("path attribute header cut short")
        flags, code = data[pos], data[pos + 1]
        if flags & 0x10:
            if pos + 4 > n:
                raise MrtRecordError("path attribute header cut short")
            length = (data[pos + 2] << 8) | data[pos + 3]
            pos += 4
        else:
            length = data[pos + 2]
            pos += 3
        if pos + length > n:
            raise MrtRecordError(f"path attribute {code} longer than the attribute block")
        value = data[pos:pos + length]
        pos += length
        if code == ATTR_AS_PATH:
            segs = _segments(value, as4)
        elif code == ATTR_AS4_PATH:
            segs4 = _segments(value, True)
        elif code == ATTR_NEXT_HOP:
            next_hop = _address(value)
        elif code == ATTR_COMMUNITIES:
            if length % 4:
                raise MrtRecordError("COMMUNITIES length not a multiple of 4")
            vals = struct.unpack_from(">%dI" % (length // 4), value)
            communities.extend(f"{v >> 16}:{v & 0xFFFF}" for v in vals)
        elif code == ATTR_LARGE_COMMUNITIES:
            if length % 12:
                raise MrtRecordError("LARGE_COMMUNITY length not a multiple of 12")
            vals = struct.unpack_from(">%dI" % (length // 4), value)
            communities.extend(f"{vals[i]}:{vals[i + 1]}:{vals[i + 2]}" for i in range(0, len(vals), 3))
        elif code == ATTR_MP_REACH:
            if table_dump and length >= 1 and value[0] + 1 == length:
                # RFC 6396 4.3.4: only next-hop length and next hop are kept.
                if value[0]:
                    next_hop = _address(value[1:])
            else:
                if length < 5:
                    raise MrtRecordError("MP_REACH_NLRI too short")
                afi = (value[0] << 8) | value[1]
                safi, nhlen = value[2], value[3]
                if 4 + nhlen + 1 > length:
                    raise MrtRecordError("MP_REACH_NLRI next hop longer than the attribute")
                if nhlen:
                    next_hop = _address(value[4:4 + nhlen])
                mp_reach = (afi, safi, bytes(value[4 + nhlen + 1:]))
        elif code == ATTR_MP_UNREACH:
            if length < 3:
                raise MrtRecordError("MP_UNREACH_NLRI too short")
            mp_unreach = ((value[0] << 8) | value[1], value[2], bytes(value[3:]))
    if segs is None:
        segs = []
    if segs4 is not None and not as4:
        segs = _merge_as4(segs, segs4)
    origin, path, text, hops = _path_from_segments(segs)
    attrs = Attrs(origin, path, text, tuple(communities), next_hop, hops)
    return ParsedAttrs(attrs, mp_reach, mp_unreach)


def parse_prefixes(data: bytes | memoryview, afi: int, addpath: bool) -> list[tuple[int, int, int, int]]:
    """BGP NLRI encoding -> [(family, network int, length, path id)]."""
    out = []
    width = 32 if afi == 1 else 128
    nbytes_max = width // 8
    pos, n = 0, len(data)
    while pos < n:
        path_id = 0
        if addpath:
            if pos + 4 > n:
                raise MrtRecordError("add-path NLRI cut short")
            path_id = U32.unpack_from(data, pos)[0]
            pos += 4
        if pos >= n:
            raise MrtRecordError("NLRI cut short")
        plen = data[pos]
        pos += 1
        if plen > width:
            raise MrtRecordError(f"prefix length {plen} > {width}")
        nb = (plen + 7) // 8
        if pos + nb > n:
            raise MrtRecordError("NLRI prefix cut short")
        raw = bytes(data[pos:pos + nb]) + b"\x00" * (nbytes_max - nb)
        pos += nb
        net = int.from_bytes(raw, "big")
        if plen < width:
            net &= ~((1 << (width - plen)) - 1)  # clear stray host bits
        out.append((4 if afi == 1 else 6, net, plen, path_id))
    return out


# -- the walk ------------------------------------------------------------------

class MrtReader:
    """Walks an MRT buffer and accumulates one best route per prefix."""

    def __init__(self) -> None:
        self.result = MrtResult()
        self.peers: list[tuple[str, int]] = []
        self._cache: dict[tuple[bytes, bool], Attrs] = {}
        # BGP4MP replay state: (peer, family, net, plen, path id) -> Attrs
        self._updates: dict[tuple[str, int, int, int, int], Attrs] = {}

    def _attrs(self, blob: memoryview, as4: bool) -> Attrs:
        key = (bytes(blob), as4)
        hit = self._cache.get(key)
        if hit is None:
            hit = parse_attributes(blob, as4, table_dump=True).attrs
            self._cache[key] = hit
        return hit

    def _offer(self, key: tuple[int, int, int], attrs: Attrs, peer: str) -> None:
        cur = self.result.routes.get(key)
        if cur is None or attrs.hops < cur[0].hops:
            self.result.routes[key] = (attrs, peer)

    def read(self, data: bytes, progress: Callable[[int], None] | None = None) -> MrtResult:
        res = self.result
        res.total_bytes = len(data)
        buf = memoryview(data)
        pos, n = 0, len(data)
        next_tick = 1 << 22
        while pos < n:
            if n - pos < HEADER.size:
                res.fatal = MrtFault(pos, f"truncated MRT header: {n - pos} of 12 bytes")
                break
            _ts, mtype, subtype, length = HEADER.unpack_from(buf, pos)
            body = pos + HEADER.size
            if body + length > n:
                res.fatal = MrtFault(
                    pos, f"truncated MRT record (type {mtype}/{subtype}): header says {length} bytes,"
                         f" only {n - body} remain")
                break
            try:
                self._record(mtype, subtype, buf[body:body + length])
                res.records += 1
            except (MrtRecordError, struct.error, IndexError, ValueError) as exc:
                res.error(pos, f"corrupt MRT record (type {mtype}/{subtype}): {exc}")
            pos = body + length
            if progress is not None and pos >= next_tick:
                progress(pos)
                next_tick = pos + (1 << 22)
        res.bytes_read = pos
        self._finish_updates()
        if progress is not None:
            progress(pos)
        return res

    def _record(self, mtype: int, subtype: int, rec: memoryview) -> None:
        if mtype == TABLE_DUMP_V2:
            if subtype == 1:
                self._peer_index(rec)
            elif subtype in TDV2_RIB:
                afi, addpath = TDV2_RIB[subtype]
                self._rib(rec, afi, addpath, generic=False)
            elif subtype in TDV2_GENERIC:
                self._rib(rec, 0, TDV2_GENERIC[subtype], generic=True)
            elif subtype in TDV2_MULTICAST:
                self.result.skip("multicast RIB")
            else:
                self.result.skip(f"TABLE_DUMP_V2 subtype {subtype}")
        elif mtype in (BGP4MP, BGP4MP_ET):
            if mtype == BGP4MP_ET:
                rec = rec[4:]  # microseconds
            if subtype in BGP4MP_MESSAGES:
                as4, addpath = BGP4MP_MESSAGES[subtype]
                self._bgp4mp(rec, as4, addpath)
            elif subtype in BGP4MP_STATE:
                self.result.skip("BGP4MP state change")
            elif subtype in BGP4MP_LOCAL:
                self.result.skip("BGP4MP local message")
            else:
                self.result.skip(f"BGP4MP subtype {subtype}")
        elif mtype == TABLE_DUMP:
            self._table_dump_v1(rec, subtype)
        else:
            self.result.skip(f"MRT type {mtype}")

    def _peer_index(self, rec: memoryview) -> None:
        pos = 4
        (name_len,) = U16.unpack_from(rec, pos)
        pos += 2 + name_len
        (count,) = U16.unpack_from(rec, pos)
        pos += 2
        peers = []
        for _ in range(count):
            ptype = rec[pos]
            pos += 5  # type + BGP id
            alen = 16 if ptype & 1 else 4
            if pos + alen > len(rec):
                raise MrtRecordError("peer entry cut short")
            ip = _address(rec[pos:pos + alen])
            pos += alen
            if ptype & 2:
                (asn,) = U32.unpack_from(rec, pos)
                pos += 4
            else:
                (asn,) = U16.unpack_from(rec, pos)
                pos += 2
            peers.append((ip, asn))
        self.peers = peers

    def _rib(self, rec: memoryview, afi: int, addpath: bool, generic: bool) -> None:
        pos = 4  # sequence number
        if generic:
            afi = (rec[pos] << 8) | rec[pos + 1]
            safi = rec[pos + 2]
            pos += 3
            if afi not in (1, 2) or safi != 1:
                self.result.skip(f"RIB_GENERIC afi {afi} safi {safi}")
                return
        plen = rec[pos]
        width = 32 if afi == 1 else 128
        if plen > width:
            raise MrtRecordError(f"prefix length {plen} > {width}")
        nb = (plen + 7) // 8
        raw = bytes(rec[pos + 1:pos + 1 + nb])
        if len(raw) < nb:
            raise MrtRecordError("prefix cut short")
        pos += 1 + nb
        net = int.from_bytes(raw + b"\x00" * (width // 8 - nb), "big")
        if plen < width:
            net &= ~((1 << (width - plen)) - 1)
        key = (4 if afi == 1 else 6, net, plen)
        (count,) = U16.unpack_from(rec, pos)
        pos += 2
        n = len(rec)
        for _ in range(count):
            (peer_idx,) = U16.unpack_from(rec, pos)
            pos += 6  # peer index + originated time
            if addpath:
                pos += 4
            (alen,) = U16.unpack_from(rec, pos)
            pos += 2
            if pos + alen > n:
                raise MrtRecordError("RIB entry attributes longer than the record")
            attrs = self._attrs(rec[pos:pos + alen], True)
            pos += alen
            peer = self.peers[peer_idx][0] if peer_idx < len(self.peers) else str(peer_idx)
            self._offer(key, attrs, peer)

    def _table_dump_v1(self, rec: memoryview, afi: int) -> None:
        if afi not in (1, 2):
            raise MrtRecordError(f"TABLE_DUMP subtype {afi} is not IPv4 (1) or IPv6 (2)")
        alen = 4 if afi == 1 else 16
        pos = 4  # view + sequence
        net = int.from_bytes(bytes(rec[pos:pos + alen]), "big")
        plen = rec[pos + alen]
        pos += alen + 2 + 4  # prefix, length, status, originated
        peer = _address(rec[pos:pos + alen])
        pos += alen + 2  # peer ip + peer AS
        (attr_len,) = U16.unpack_from(rec, pos)
        pos += 2
        if pos + attr_len > len(rec):
            raise MrtRecordError("attributes longer than the record")
        attrs = self._attrs(rec[pos:pos + attr_len], False)
        self._offer((4 if afi == 1 else 6, net, plen), attrs, peer)

    def _bgp4mp(self, rec: memoryview, as4: bool, addpath: bool) -> None:
        aw = 4 if as4 else 2
        pos = 2 * aw + 2  # peer AS, local AS, interface index
        (afi,) = U16.unpack_from(rec, pos)
        pos += 2
        alen = 4 if afi == 1 else 16
        peer = _address(rec[pos:pos + alen])
        pos += 2 * alen
        msg = rec[pos:]
        if len(msg) < 19:
            raise MrtRecordError("BGP message shorter than its header")
        (mlen,) = U16.unpack_from(msg, 16)
        if msg[18] != 2:
            self.result.skip("BGP message other than UPDATE")
            return
        if mlen > len(msg) or mlen < 23:
            raise MrtRecordError(f"BGP UPDATE length {mlen} does not fit the record")
        body = msg[19:mlen]
        (wlen,) = U16.unpack_from(body, 0)
        withdrawn = body[2:2 + wlen]
        (plen_attrs,) = U16.unpack_from(body, 2 + wlen)
        astart = 4 + wlen
        if astart + plen_attrs > len(body):
            raise MrtRecordError("UPDATE attributes longer than the message")
        parsed = parse_attributes(body[astart:astart + plen_attrs], as4, table_dump=False)
        nlri = body[astart + plen_attrs:]
        for fam, net, plen, pid in parse_prefixes(withdrawn, 1, addpath):
            self._updates.pop((peer, fam, net, plen, pid), None)
        if parsed.mp_unreach and parsed.mp_unreach[1] == 1 and parsed.mp_unreach[0] in (1, 2):
            for fam, net, plen, pid in parse_prefixes(parsed.mp_unreach[2], parsed.mp_unreach[0], addpath):
                self._updates.pop((peer, fam, net, plen, pid), None)
        for fam, net, plen, pid in parse_prefixes(nlri, 1, addpath):
            self._updates[(peer, fam, net, plen, pid)] = parsed.attrs
        if parsed.mp_reach and parsed.mp_reach[1] == 1 and parsed.mp_reach[0] in (1, 2):
            for fam, net, plen, pid in parse_prefixes(parsed.mp_reach[2], parsed.mp_reach[0], addpath):
                self._updates[(peer, fam, net, plen, pid)] = parsed.attrs

    def _finish_updates(self) -> None:
        for (peer, fam, net, plen, _pid), attrs in self._updates.items():
            self._offer((fam, net, plen), attrs, peer)


def read_mrt(path: Path | str, progress: Callable[[int, int], None] | None = None) -> MrtResult:
    """Read an MRT file (.gz/.bz2 too). Never raises on bad content: see ``fatal``/``errors``."""
    data, cut = read_bytes(Path(path))
    reader = MrtReader()
    total = len(data)
    cb = (lambda done: progress(done, total)) if progress else None
    result = reader.read(data, cb)
    if cut and result.fatal is None:
        result.fatal = MrtFault(total, "compressed file ends early (truncated archive)")
    return result
