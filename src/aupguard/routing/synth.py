"""Synthetic RIBs and an MRT TABLE_DUMP_V2 writer, for tests, benchmarks and the demo.

The generator is seeded and vectorised (numpy): a full-table-sized RIB
(~1 M IPv4 + 200 k IPv6 prefixes, nested like the real table: covering
aggregates with more-specifics inside) is made in about a second.
The writer emits what a route collector would: PEER_INDEX_TABLE then one
RIB_IPV4_UNICAST / RIB_IPV6_UNICAST record per prefix (RFC 6396 4.3), with
4-byte AS_PATHs, COMMUNITIES and, for IPv6, the abbreviated MP_REACH_NLRI.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pyarrow as pa

from aupguard.routing.rib import RIB_SCHEMA, Rib


def _paths(rng: np.random.Generator, n_paths: int) -> pa.ListArray:
    lengths = rng.integers(1, 7, n_paths)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    transit = np.array([174, 3356, 1299, 2914, 6939, 6453, 3257, 6762, 4200000001], dtype=np.uint32)
    values = rng.integers(64512, 4_200_000_000, int(offsets[-1])).astype(np.uint32)
    # first hops are the big transit ASes, as seen from an ISP edge
    values[offsets[:-1]] = transit[rng.integers(0, len(transit), n_paths)]
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.uint32()))


def synthetic_rib(n4: int = 1_000_000, n6: int = 200_000, seed: int = 1, n_paths: int = 60_000) -> Rib:
    """A nested RIB of about n4 IPv4 and n6 IPv6 prefixes (duplicates removed)."""
    rng = np.random.default_rng(seed)
    # oversample, drop duplicate prefixes, keep the first n of each family
    m4, m6 = int(n4 * 1.5) + 10, int(n6 * 1.4) + 10
    # IPv4: 60% /24, the rest /8-/23 aggregates, 3% more-specifics /25-/32 inside them
    base = rng.integers(1 << 24, 224 << 24, m4, dtype=np.uint64)
    plen4 = np.where(rng.random(m4) < 0.6, 24, rng.integers(8, 24, m4)).astype(np.uint8)
    longer = rng.random(m4) < 0.03
    plen4[longer] = rng.integers(25, 33, int(longer.sum()))
    mask4 = ((np.uint64(0xFFFFFFFF) << (np.uint64(32) - plen4.astype(np.uint64))) & np.uint64(0xFFFFFFFF))
    net4 = base & mask4
    _, keep4 = np.unique((net4 << np.uint64(6)) | plen4.astype(np.uint64), return_index=True)
    keep4 = np.sort(keep4)[:n4]
    net4, plen4 = net4[keep4], plen4[keep4]
    # IPv6: /29-/48 in 2000::/3, 2% /49-/128
    hi6 = (np.uint64(0x2000) << np.uint64(48)) | rng.integers(0, 1 << 45, m6, dtype=np.uint64)
    lo6 = rng.integers(0, 1 << 63, m6, dtype=np.uint64)
    plen6 = rng.integers(29, 49, m6).astype(np.uint8)
    longer6 = rng.random(m6) < 0.02
    plen6[longer6] = rng.integers(49, 129, int(longer6.sum()))
    p = plen6.astype(np.int64)
    hi_bits = np.minimum(p, 64).astype(np.uint64)
    hi_mask = np.where(hi_bits == 0, np.uint64(0),
                       np.uint64(0xFFFFFFFFFFFFFFFF) << (np.uint64(64) - np.maximum(hi_bits, 1)))
    lo_bits = np.clip(p - 64, 0, 64).astype(np.uint64)
    lo_mask = np.where(lo_bits == 0, np.uint64(0),
                       np.uint64(0xFFFFFFFFFFFFFFFF) << (np.uint64(64) - np.maximum(lo_bits, 1)))
    hi6 &= hi_mask
    lo6 &= lo_mask
    order = np.lexsort((plen6, lo6, hi6))
    dup = np.zeros(m6, dtype=bool)
    dup[1:] = (hi6[order][1:] == hi6[order][:-1]) & (lo6[order][1:] == lo6[order][:-1]) \
        & (plen6[order][1:] == plen6[order][:-1])
    keep6 = np.sort(order[~dup])[:n6]
    hi6, lo6, plen6 = hi6[keep6], lo6[keep6], plen6[keep6]
    n4, n6 = len(net4), len(hi6)
    family = np.concatenate([np.full(n4, 4, np.uint8), np.full(n6, 6, np.uint8)])
    plen = np.concatenate([plen4, plen6])
    net_hi = np.concatenate([np.zeros(n4, np.uint64), hi6])
    net_lo = np.concatenate([net4, lo6])
    first = np.arange(n4 + n6)
    n = len(first)
    paths = _paths(rng, n_paths)
    pick = rng.integers(0, n_paths, n)
    as_path = paths.take(pa.array(pick))
    last = pa.array(np.asarray(paths.offsets)[1:] - 1)
    origin = pa.array(np.asarray(paths.values)[np.asarray(last)][pick], pa.uint32())
    comm_pool = pa.array([[], ["65535:666"], ["65000:100", "65000:200"], ["64512:1"]],
                         pa.list_(pa.string()))
    table = pa.table({
        "family": family, "plen": plen, "net_hi": net_hi, "net_lo": net_lo,
        "origin_as": origin, "as_path": as_path,
        "as_path_text": pa.nulls(n, pa.string()),
        "communities": comm_pool.take(pa.array(rng.integers(0, 4, n))),
        "next_hop": pa.array(np.where(family == 4, "192.0.2.1", "2001:db8::1")),
        "peer": pa.array(["192.0.2.1"] * n),
    }, schema=RIB_SCHEMA)
    return Rib(table, {"source": f"synthetic seed={seed}"})


# -- MRT writer ------------------------------------------------------------------------

def _attr(code: int, value: bytes, flags: int = 0x40) -> bytes:
    if len(value) > 255:
        return struct.pack(">BBH", flags | 0x10, code, len(value)) + value
    return struct.pack(">BBB", flags, code, len(value)) + value


def encode_attributes(family: int, as_path: list[int], communities: list[str], next_hop: str,
                      as_set: list[int] | None = None) -> bytes:
    """Path attributes as TABLE_DUMP_V2 stores them (4-byte ASNs, abbreviated MP_REACH)."""
    import ipaddress

    out = _attr(1, b"\x00")  # ORIGIN IGP
    seg = struct.pack(">BB", 2, len(as_path)) + struct.pack(f">{len(as_path)}I", *as_path)
    if as_set:
        seg += struct.pack(">BB", 1, len(as_set)) + struct.pack(f">{len(as_set)}I", *as_set)
    out += _attr(2, seg)
    nh = ipaddress.ip_address(next_hop)
    if family == 4:
        out += _attr(3, nh.packed)
    else:
        out += _attr(14, bytes([len(nh.packed)]) + nh.packed, flags=0x80)
    std = [c for c in communities if c.count(":") == 1]
    if std:
        vals = [(int(a) << 16) | int(b) for a, b in (c.split(":") for c in std)]
        out += _attr(8, struct.pack(f">{len(vals)}I", *vals), flags=0xC0)
    return out


def mrt_record(mtype: int, subtype: int, body: bytes, ts: int = 1790000000) -> bytes:
    return struct.pack(">IHHI", ts, mtype, subtype, len(body)) + body


def peer_index(peer_ip: str = "192.0.2.1", peer_as: int = 64496) -> bytes:
    import ipaddress

    ip = ipaddress.ip_address(peer_ip)
    ptype = 0x02 | (0x01 if ip.version == 6 else 0)
    body = struct.pack(">IH", 0xC0000201, 0) + struct.pack(">H", 1)
    body += struct.pack(">BI", ptype, 0xC0000201) + ip.packed + struct.pack(">I", peer_as)
    return mrt_record(13, 1, body)


def rib_record(seq: int, family: int, net: int, plen: int, attrs: bytes) -> bytes:
    width = 32 if family == 4 else 128
    nb = (plen + 7) // 8
    prefix = net.to_bytes(width // 8, "big")[:nb]
    body = struct.pack(">IB", seq, plen) + prefix + struct.pack(">H", 1)
    body += struct.pack(">HIH", 0, 1790000000, len(attrs)) + attrs
    return mrt_record(13, 2 if family == 4 else 4, body)


def write_mrt(rib: Rib, path: Path) -> Path:
    """Write a RIB as an MRT TABLE_DUMP_V2 file (one peer)."""
    t = rib.table
    fam = t.column("family").to_numpy()
    plen = t.column("plen").to_numpy()
    hi = t.column("net_hi").to_numpy()
    lo = t.column("net_lo").to_numpy()
    paths = t.column("as_path").combine_chunks()
    comms = t.column("communities").to_pylist()
    nhs = t.column("next_hop").to_pylist()
    p_off = np.asarray(paths.offsets)
    p_val = np.asarray(paths.values)
    cache: dict[tuple, bytes] = {}
    with open(path, "wb") as fh:
        fh.write(peer_index())
        chunk: list[bytes] = []
        for i in range(len(fam)):
            f = int(fam[i])
            ap = tuple(p_val[p_off[i]:p_off[i + 1]].tolist())
            key = (f, ap, tuple(comms[i] or ()), nhs[i])
            blob = cache.get(key)
            if blob is None:
                blob = cache[key] = encode_attributes(f, list(ap), list(comms[i] or ()), nhs[i])
            net = int(lo[i]) if f == 4 else (int(hi[i]) << 64) | int(lo[i])
            chunk.append(rib_record(i, f, net, int(plen[i]), blob))
            if len(chunk) >= 10000:
                fh.write(b"".join(chunk))
                chunk.clear()
        fh.write(b"".join(chunk))
    return Path(path)
