"""Who held address A at time T (port P)? — scalar and vectorised.

The vectorised index flattens every assignment's address range into sorted,
non-overlapping elementary intervals (DESIGN.md: intervals + searchsorted).
Each interval carries the assignments covering it, most specific first, in
CSR form; a lookup is one ``searchsorted`` plus a short loop over candidate
*depth* (not over addresses) that checks time and port ranges for all
queries at once. IPv4 queries take a uint64 fast path; IPv6 ones compare
16-byte big-endian keys.

Rules (the same in every form):
- only assignments valid at T (valid_from <= T < valid_to) and whose port
  range contains P count;
- the most specific matching prefix wins;
- at that prefix, one client -> match; several -> ambiguous. A query without
  a port matches port-ranged (CGNAT) assignments only partially: if several
  clients share the address by port, the answer is ambiguous.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aupguard import netaddr

T_MIN = np.iinfo(np.int64).min
T_MAX = np.iinfo(np.int64).max
NOBODY = -1
AMBIGUOUS = -2


def to_ms(at: datetime | None, default: int) -> int:
    if at is None:
        return default
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return int(at.timestamp() * 1000)


@dataclass(frozen=True)
class Span:
    """One assignment, reduced to what attribution needs."""

    client_id: str
    prefix: str
    valid_from: datetime | None = None
    valid_to: datetime | None = None      # exclusive
    port_lo: int | None = None
    port_hi: int | None = None


@dataclass
class Attribution:
    status: str                          # match | none | ambiguous
    client_id: str | None = None
    candidates: list[str] = field(default_factory=list)
    prefix: str | None = None

    @property
    def matched(self) -> bool:
        return self.status == "match"


def _key16(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    return netaddr.hilo_to_bytes16(hi, lo).view("S16").ravel()


class AttributionIndex:
    """An immutable snapshot of all assignments, built for fast lookups."""

    def __init__(self, spans: list[Span]):
        self.spans = list(spans)
        self.client_ids: list[str] = sorted({s.client_id for s in self.spans})
        code_of = {c: i for i, c in enumerate(self.client_ids)}
        n = len(self.spans)
        firsts, lasts, plens = [], [], []
        for s in self.spans:
            first, last, plen = netaddr.prefix_range(s.prefix)
            firsts.append(first)
            lasts.append(last)
            plens.append(plen)
        self._first = firsts
        self.plen = np.array(plens, dtype=np.int16)
        self.client = np.array([code_of[s.client_id] for s in self.spans], dtype=np.int32)
        self.t_from = np.array([to_ms(s.valid_from, T_MIN) for s in self.spans], dtype=np.int64)
        self.t_to = np.array([to_ms(s.valid_to, T_MAX) for s in self.spans], dtype=np.int64)
        ranged = np.array([s.port_lo is not None for s in self.spans], dtype=bool)
        self.ranged = ranged
        self.port_lo = np.array([s.port_lo if s.port_lo is not None else 0 for s in self.spans], dtype=np.int32)
        self.port_hi = np.array([s.port_hi if s.port_hi is not None else 65535 for s in self.spans], dtype=np.int32)
        self._build_intervals(firsts, lasts, n)
        self._build_scalar()

    # -- construction -----------------------------------------------------
    def _build_intervals(self, firsts: list[int], lasts: list[int], n: int) -> None:
        f_hi, f_lo = netaddr.int_to_hilo(firsts)
        # last + 1 may overflow 128 bits for ranges ending at ffff..ff: keep it as the
        # sentinel "end of space" by saturating (nothing lies above it).
        ends = [min(v + 1, (1 << 128) - 1) for v in lasts]
        e_hi, e_lo = netaddr.int_to_hilo(ends)
        b_hi = np.concatenate([f_hi, e_hi, np.zeros(1, np.uint64)])
        b_lo = np.concatenate([f_lo, e_lo, np.zeros(1, np.uint64)])
        order = np.lexsort((b_lo, b_hi))
        b_hi, b_lo = b_hi[order], b_lo[order]
        keep = np.ones(len(b_hi), dtype=bool)
        keep[1:] = (b_hi[1:] != b_hi[:-1]) | (b_lo[1:] != b_lo[:-1])
        self.b_hi, self.b_lo = b_hi[keep], b_lo[keep]
        self.b_key = _key16(self.b_hi, self.b_lo)
        # IPv4 fast path: the boundaries with hi == 0 are a contiguous run at the start.
        self.v4_end = int(np.searchsorted(self.b_hi, np.uint64(0), side="right"))
        nb = len(self.b_key)
        if n == 0:
            self.offsets = np.zeros(nb + 1, dtype=np.int64)
            self.cand = np.zeros(0, dtype=np.int32)
            self.max_depth = 0
            return
        start = np.searchsorted(self.b_key, _key16(f_hi, f_lo), side="left")
        stop = np.searchsorted(self.b_key, _key16(e_hi, e_lo), side="left")
        # A range ending at the very top of the space covers through the last interval.
        top = (e_hi == np.uint64(0xFFFFFFFFFFFFFFFF)) & (e_lo == np.uint64(0xFFFFFFFFFFFFFFFF))
        stop = np.where(top, nb, stop)
        lengths = (stop - start).astype(np.int64)
        total = int(lengths.sum())
        span_idx = np.repeat(np.arange(n, dtype=np.int32), lengths)
        run_start = np.repeat(np.cumsum(lengths) - lengths, lengths)
        interval = np.repeat(start, lengths) + (np.arange(total) - run_start)
        # Sort by interval, then most specific first.
        order = np.lexsort((-self.plen[span_idx].astype(np.int32), interval))
        self.cand = span_idx[order]
        counts = np.bincount(interval, minlength=nb)
        self.offsets = np.zeros(nb + 1, dtype=np.int64)
        np.cumsum(counts, out=self.offsets[1:])
        self.max_depth = int(counts.max()) if len(counts) else 0

    def _build_scalar(self) -> None:
        self._by_prefix: dict[tuple[int, int], list[int]] = {}
        for i, first in enumerate(self._first):
            self._by_prefix.setdefault((first, int(self.plen[i])), []).append(i)
        self._plens = sorted({int(p) for p in self.plen}, reverse=True)

    # -- vectorised ---------------------------------------------------------
    def lookup(self, hi: np.ndarray, lo: np.ndarray, t_ms: np.ndarray,
               ports: np.ndarray | None = None) -> np.ndarray:
        """Client codes per query: >=0 index into client_ids, -1 nobody, -2 ambiguous."""
        hi = np.asarray(hi, dtype=np.uint64)
        lo = np.asarray(lo, dtype=np.uint64)
        t_ms = np.broadcast_to(np.asarray(t_ms, dtype=np.int64), hi.shape)
        m = len(hi)
        code = np.full(m, NOBODY, dtype=np.int32)
        if m == 0 or self.max_depth == 0:
            return code
        iv = self._interval_of(hi, lo)
        port = (np.full(m, -1, dtype=np.int32) if ports is None
                else np.broadcast_to(np.asarray(ports, dtype=np.int32), hi.shape))
        base = self.offsets[iv]
        count = (self.offsets[iv + 1] - base).astype(np.int64)
        best = np.full(m, -1, dtype=np.int16)
        active = np.nonzero(count > 0)[0]
        for k in range(self.max_depth):
            if len(active) == 0:
                break
            active = active[count[active] > k]
            if len(active) == 0:
                break
            a = self.cand[base[active] + k]
            plen = self.plen[a]
            cur_best = best[active]
            done = (cur_best >= 0) & (plen < cur_best)
            t = t_ms[active]
            p = port[active]
            in_time = (self.t_from[a] <= t) & (t < self.t_to[a])
            ranged = self.ranged[a]
            port_ok = ~ranged | ((p >= 0) & (self.port_lo[a] <= p) & (p <= self.port_hi[a]))
            port_partial = ranged & (p < 0)
            hit = ~done & in_time & (port_ok | port_partial)
            q = active[hit]
            c = self.client[a[hit]]
            first_hit = best[q] < 0
            fq = q[first_hit]
            best[fq] = plen[hit][first_hit]
            code[fq] = c[first_hit]
            again = q[~first_hit]
            clash = code[again] != c[~first_hit]
            code[again[clash & (code[again] >= 0)]] = AMBIGUOUS
            active = active[~done]
        return code

    def _interval_of(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        iv = np.empty(len(hi), dtype=np.int64)
        v4 = hi == 0
        if v4.any():
            iv[v4] = np.searchsorted(self.b_lo[: self.v4_end], lo[v4], side="right") - 1
        if (~v4).any():
            keys = _key16(hi[~v4], lo[~v4])
            iv[~v4] = np.searchsorted(self.b_key, keys, side="right") - 1
        # Index -1 can only happen below the lowest boundary (address 0), which has none.
        return np.clip(iv, 0, len(self.b_key) - 1)

    def lookup_arrow(self, addresses: pa.Array | pa.ChunkedArray,
                     times: pa.Array | pa.ChunkedArray,
                     ports: pa.Array | pa.ChunkedArray | None = None) -> pa.Array:
        """Client id per flow as an Arrow string array (null: nobody or ambiguous)."""
        hi, lo = netaddr.arrow_to_hilo(addresses)
        t_ms = _times_ms(times)
        port_np = None
        if ports is not None:
            port_np = pc.fill_null(pc.cast(_combine(ports), pa.int32()), -1).to_numpy(zero_copy_only=False)
        codes = self.lookup(hi, lo, t_ms, port_np)
        return codes_to_arrow(codes, self.client_ids)

    # -- scalar ----------------------------------------------------------------
    def who(self, address: str, at: datetime | None = None, port: int | None = None) -> Attribution:
        """One address, readable answer with candidates (for the CLI, API and intake)."""
        addr = netaddr.parse_address(address)
        value = netaddr.address_int(addr)
        t = to_ms(at or datetime.now(timezone.utc), 0)
        for plen in self._plens:
            mask = ((1 << 128) - 1) ^ ((1 << (128 - plen)) - 1) if plen else 0
            matches = self._by_prefix.get((value & mask, plen))
            if not matches:
                continue
            clients: list[str] = []
            for i in matches:
                if not (self.t_from[i] <= t < self.t_to[i]):
                    continue
                if self.ranged[i] and port is not None and not (
                        self.port_lo[i] <= port <= self.port_hi[i]):
                    continue
                cid = self.client_ids[self.client[i]]
                if cid not in clients:
                    clients.append(cid)
            if clients:
                prefix = self.spans[matches[0]].prefix
                if len(clients) == 1:
                    return Attribution("match", clients[0], clients, prefix)
                return Attribution("ambiguous", None, clients, prefix)
        return Attribution("none")

    def all_prefixes(self, at: datetime | None = None) -> list[Span]:
        """Assignments in force at `at` (all of them when `at` is None)."""
        t = to_ms(at, 0) if at else None
        return [s for i, s in enumerate(self.spans)
                if t is None or self.t_from[i] <= t < self.t_to[i]]


def _combine(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(array, pa.ChunkedArray):
        return array.combine_chunks()
    return array


def _times_ms(times: pa.Array | pa.ChunkedArray | np.ndarray) -> np.ndarray:
    if isinstance(times, np.ndarray):
        return times.astype(np.int64)
    arr = _combine(times)
    if pa.types.is_timestamp(arr.type):
        arr = pc.cast(arr, pa.timestamp("ms", tz=arr.type.tz))
    return pc.cast(arr, pa.int64()).to_numpy(zero_copy_only=False)


def codes_to_arrow(codes: np.ndarray, client_ids: list[str]) -> pa.Array:
    if not client_ids:
        return pa.nulls(len(codes), pa.string())
    indices = pa.array(np.where(codes >= 0, codes, 0).astype(np.int32), mask=codes < 0)
    dictionary = pa.DictionaryArray.from_arrays(indices, pa.array(client_ids, pa.string()))
    return dictionary.cast(pa.string())


def brute_force(spans: list[Span], address: str, at: datetime, port: int | None) -> Attribution:
    """Reference answer by scanning every assignment (tests only: O(n) per query)."""
    addr = netaddr.parse_address(address)
    value = netaddr.address_int(addr)
    t = to_ms(at, 0)
    best_plen, clients, prefix = -1, [], None
    for s in spans:
        first, last, plen = netaddr.network_range(ipaddress.ip_network(s.prefix, strict=False))
        if not (first <= value <= last):
            continue
        if not (to_ms(s.valid_from, T_MIN) <= t < to_ms(s.valid_to, T_MAX)):
            continue
        if s.port_lo is not None and port is not None and not (s.port_lo <= port <= s.port_hi):
            continue
        if plen > best_plen:
            best_plen, clients, prefix = plen, [s.client_id], s.prefix
        elif plen == best_plen and s.client_id not in clients:
            clients.append(s.client_id)
    if not clients:
        return Attribution("none")
    if len(clients) == 1:
        return Attribution("match", clients[0], clients, prefix)
    return Attribution("ambiguous", None, clients, prefix)
