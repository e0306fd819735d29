"""Vectorised longest-prefix match over a RIB (numpy, no loop per address).

Build: the nested prefixes of each family are flattened into sorted,
non-overlapping intervals, each labelled with its most specific route. The
flattening itself is vectorised per prefix length: for every interval start
point, test membership in the sorted prefixes of length L (longest first), so
the cost is (#distinct lengths) x searchsorted, never a loop per prefix.

Lookup:
- IPv4 (the bulk of flows): a /24-indexed table (2^24 int32, 64 MiB) answers
  every address whose /24 holds no interval boundary with one gather; the rest
  (/24s split by longer prefixes) fall back to searchsorted over the interval
  starts. Small RIBs skip the table (searchsorted only).
- IPv6: prefixes up to /64 are intervals on the upper 64 bits (searchsorted
  on uint64). Longer ones (/65-/128, rare: host routes, blackholes) are exact
  matches per length on the 16-byte big-endian key, applied on top.

Route ids are positions in the RIB table; -1 means no route.
"""

from __future__ import annotations

import numpy as np

NO_ROUTE = -1
_SPLIT = -2  # /24 holds an interval boundary: ask searchsorted
DENSE_MIN_INTERVALS = 50_000  # below this, the 64 MiB /24 table is not worth building
U64_MAX = np.uint64(0xFFFFFFFFFFFFFFFF)


def _masks(width: int, dtype) -> dict[int, np.generic]:
    full = (1 << width) - 1
    return {L: dtype(full ^ ((1 << (width - L)) - 1)) for L in range(width + 1)}


def flatten(net: np.ndarray, plen: np.ndarray, ids: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Nested prefixes -> (sorted interval starts, route id per interval) in a width-bit space."""
    dtype = np.uint64
    net = net.astype(dtype)
    if len(net) == 0:
        return np.zeros(1, dtype=dtype), np.full(1, NO_ROUTE, dtype=np.int32)
    masks = _masks(width, int)
    top = (1 << width) - 1
    # last address of each prefix; per length, so the host mask is a uint64 scalar
    last = np.empty_like(net)
    for L in np.unique(plen).tolist():
        sel = plen == L
        last[sel] = net[sel] | dtype((1 << (width - L)) - 1)
    ends = last[last < dtype(top)] + dtype(1)
    points = np.unique(np.concatenate([np.zeros(1, dtype=dtype), net, ends]))
    ans = np.full(len(points), NO_ROUTE, dtype=np.int32)
    for L in sorted(np.unique(plen).tolist(), reverse=True):
        sel = plen == L
        keys = net[sel]
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        kid = ids[sel][order]
        open_ = ans == NO_ROUTE
        if not open_.any():
            break
        m = points[open_] & dtype(masks[L])
        pos = np.searchsorted(keys, m)
        pos = np.minimum(pos, len(keys) - 1)
        hit = keys[pos] == m
        idx = np.flatnonzero(open_)[hit]
        ans[idx] = kid[pos[hit]]
    keep = np.ones(len(points), dtype=bool)
    keep[1:] = ans[1:] != ans[:-1]
    return points[keep], ans[keep]


class PrefixIndex:
    """Longest-prefix match for IPv4 and IPv6 prefixes given as route ids."""

    def __init__(self, family: np.ndarray, net_hi: np.ndarray, net_lo: np.ndarray,
                 plen: np.ndarray, dense: bool | None = None):
        family = np.asarray(family, dtype=np.uint8)
        net_hi = np.asarray(net_hi, dtype=np.uint64)
        net_lo = np.asarray(net_lo, dtype=np.uint64)
        plen = np.asarray(plen, dtype=np.uint8)
        ids = np.arange(len(family), dtype=np.int32)
        v4 = family == 4
        self.v4_starts, self.v4_ids = flatten(net_lo[v4], plen[v4], ids[v4], 32)
        self.v4_starts32 = self.v4_starts.astype(np.uint32)
        short6 = (family == 6) & (plen <= 64)
        self.v6_starts, self.v6_ids = flatten(net_hi[short6], plen[short6], ids[short6], 64)
        long6 = (family == 6) & (plen > 64)
        self.long6: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.long6_hi = np.unique(net_hi[long6])
        for L in sorted(np.unique(plen[long6]).tolist(), reverse=True):
            sel = long6 & (plen == L)
            keys = _key16(net_hi[sel], net_lo[sel])
            order = np.argsort(keys, kind="stable")
            self.long6.append((int(L), keys[order], ids[sel][order]))
        if dense is None:
            dense = len(self.v4_starts) >= DENSE_MIN_INTERVALS
        self.table24 = self._dense24() if dense else None

    def _dense24(self) -> np.ndarray:
        starts = self.v4_starts.astype(np.int64)
        bounds = np.append(starts, 1 << 32)
        # bucket b (addresses b*256 ..) starts inside interval i iff starts[i] <= b*256 < starts[i+1]
        first_bucket = -(-bounds // 256)  # ceil division
        counts = np.diff(first_bucket)
        table = np.repeat(self.v4_ids, counts).astype(np.int32)
        split = starts[(starts & 0xFF) != 0] >> 8
        table[split] = _SPLIT
        return table

    def lookup_v4(self, addr: np.ndarray) -> np.ndarray:
        """Route ids for uint32 IPv4 addresses."""
        addr = np.asarray(addr, dtype=np.uint32)
        if self.table24 is not None:
            out = self.table24[addr >> np.uint32(8)]
            rest = np.flatnonzero(out == _SPLIT)
            if len(rest):
                pos = np.searchsorted(self.v4_starts32, addr[rest], side="right") - 1
                out[rest] = self.v4_ids[pos]
            return out
        pos = np.searchsorted(self.v4_starts32, addr, side="right") - 1
        return self.v4_ids[pos]

    def lookup_v6(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.v6_starts, hi, side="right") - 1
        out = self.v6_ids[pos]
        if not self.long6:
            return out
        # Prefixes longer than /64 fix all 64 upper bits: only queries whose upper half
        # equals one of theirs can match, usually very few; test just those.
        p = np.minimum(np.searchsorted(self.long6_hi, hi), len(self.long6_hi) - 1)
        cand = np.flatnonzero(self.long6_hi[p] == hi)
        if len(cand) == 0:
            return out
        c_hi, c_lo = hi[cand], lo[cand]
        done = np.zeros(len(cand), dtype=bool)
        for L, keys, kid in self.long6:  # longest first
            lo_m = c_lo & np.uint64(((1 << 64) - 1) ^ ((1 << (128 - L)) - 1))
            q = _key16(c_hi, lo_m)
            k = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
            hit = (keys[k] == q) & ~done
            out[cand[hit]] = kid[k[hit]]
            done |= hit
        return out

    def lookup(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Route ids for 128-bit IPv4-mapped addresses given as (hi, lo) uint64 halves."""
        hi = np.asarray(hi, dtype=np.uint64)
        lo = np.asarray(lo, dtype=np.uint64)
        v4 = (hi == 0) & ((lo >> np.uint64(32)) == np.uint64(0xFFFF))
        if v4.all():
            return self.lookup_v4((lo & np.uint64(0xFFFFFFFF)).astype(np.uint32))
        out = np.empty(len(hi), dtype=np.int32)
        if v4.any():
            out[v4] = self.lookup_v4((lo[v4] & np.uint64(0xFFFFFFFF)).astype(np.uint32))
        v6 = ~v4
        out[v6] = self.lookup_v6(hi[v6], lo[v6])
        return out


def _key16(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Big-endian 16-byte keys: byte-string order equals numeric order."""
    out = np.empty((len(hi), 2), dtype=">u8")
    out[:, 0] = hi
    out[:, 1] = lo
    return out.view("S16").ravel()
