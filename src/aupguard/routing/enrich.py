"""Flow enrichment: FLOW_SCHEMA -> ENRICHED_SCHEMA (client, direction, ASN, AS path).

Called by the collector on every batch before the flow store, so it is all
column work: one vectorised LPM per address column, Arrow ``take`` to gather
AS-path lists by route id (no per-flow Python), the registry's vectorised
attribution for the client columns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aupguard import netaddr
from aupguard.flows.schema import ENRICHED_SCHEMA
from aupguard.routing.rib import Rib, rib_path

if TYPE_CHECKING:  # pragma: no cover
    from aupguard.config import Settings
    from aupguard.store.db import Store

log = logging.getLogger(__name__)
ASPATH = pa.list_(pa.uint32())


def collapse_prepends(paths: pa.Array | pa.ChunkedArray) -> pa.ListArray:
    """AS paths with consecutive repeats (prepending) removed, vectorised over the values:
    accounting charges each AS on the path once."""
    if isinstance(paths, pa.ChunkedArray):
        paths = paths.combine_chunks()
    offsets = np.asarray(paths.offsets)
    values = np.asarray(paths.values.slice(offsets[0], offsets[-1] - offsets[0]))
    offsets = offsets - offsets[0]
    keep = np.ones(len(values), dtype=bool)
    keep[1:] = values[1:] != values[:-1]
    keep[offsets[:-1][offsets[:-1] < len(values)]] = True  # every path keeps its first AS
    kept_before = np.concatenate([[0], np.cumsum(keep)]).astype(np.int32)
    new_offsets = kept_before[offsets]
    mask = paths.is_null() if paths.null_count else None
    return pa.ListArray.from_arrays(pa.array(new_offsets), pa.array(values[keep], pa.uint32()), mask=mask)


def route_columns(rib: Rib, addresses: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """(origin ASN uint32, 0 = no route; AS path list<uint32> with prepends collapsed,
    null = no route) per address."""
    n = len(addresses)
    if len(rib) == 0 or n == 0:
        return pa.array(np.zeros(n, np.uint32)), pa.nulls(n, ASPATH)
    hi, lo = netaddr.arrow_to_hilo(addresses)
    rows = rib.lookup_hilo(hi, lo)
    origin = np.append(rib.table.column("origin_as").to_numpy(), np.uint32(0))
    asn = pa.array(origin[rows])  # row -1 reads the appended 0
    take = pa.array(rows.astype(np.int64), mask=rows < 0)
    return asn, _collapsed_paths(rib).take(take)


def _collapsed_paths(rib: Rib) -> pa.ListArray:
    cached = getattr(rib, "_collapsed_paths", None)
    if cached is None:
        cached = collapse_prepends(rib.table.column("as_path"))
        rib._collapsed_paths = cached  # once per snapshot, not per batch
    return cached


def enrich(table: pa.Table, rib: Rib, attribution=None) -> pa.Table:
    """Add the ENRICHED_FIELDS to a FLOW_SCHEMA table (attribution: the registry's index)."""
    n = table.num_rows
    src, dst = table.column("src_addr"), table.column("dst_addr")
    src_asn, src_path = route_columns(rib, src)
    dst_asn, dst_path = route_columns(rib, dst)
    if attribution is not None and n:
        start = table.column("start")
        src_client = attribution.lookup_arrow(src, start)
        dst_client = attribution.lookup_arrow(dst, start)
    else:
        src_client = dst_client = pa.nulls(n, pa.string())
    client = pc.coalesce(src_client, dst_client)
    direction = pc.if_else(pc.is_valid(src_client), pa.scalar("out"),
                           pc.if_else(pc.is_valid(dst_client), pa.scalar("in"), pa.scalar(None, pa.string())))
    base = table.select([f.name for f in ENRICHED_SCHEMA if f.name in table.column_names
                         and f.name not in ("src_client", "dst_client", "client", "client_dir",
                                            "src_asn", "dst_asn", "src_as_path", "dst_as_path")])
    extra = {
        "src_client": src_client, "dst_client": dst_client, "client": client,
        "client_dir": direction, "src_asn": src_asn, "dst_asn": dst_asn,
        "src_as_path": src_path, "dst_as_path": dst_path,
    }
    for name, col in extra.items():
        base = base.append_column(name, col)
    return base.select(ENRICHED_SCHEMA.names).cast(ENRICHED_SCHEMA)


class Enricher:
    """Callable for the collector: reloads the RIB snapshot when the file changes and the
    registry index every ``registry_seconds``."""

    def __init__(self, settings: Settings, store: Store | None, registry_seconds: float = 30.0,
                 rib: Rib | None = None):
        self.path: Path = rib_path(settings)
        self.store = store
        self.registry_seconds = registry_seconds
        self._fixed_rib = rib
        self._rib: Rib = rib or Rib.empty()
        self._rib_mtime: float | None = None
        self._index = None
        self._index_at = 0.0

    def rib(self) -> Rib:
        if self._fixed_rib is not None:
            return self._fixed_rib
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            if self._rib_mtime is None:
                log.warning("no RIB snapshot at %s: flows get ASN 0 until `aupguard routes load`", self.path)
                self._rib_mtime = -1.0
            return self._rib
        if mtime != self._rib_mtime:
            self._rib = Rib.load(self.path)
            self._rib_mtime = mtime
        return self._rib

    def attribution(self):
        if self.store is None:
            return None
        now = time.monotonic()
        if self._index is None or now - self._index_at > self.registry_seconds:
            from aupguard.registry import load_index

            with self.store.session() as session:
                self._index = load_index(session)
            self._index_at = now
        return self._index

    def __call__(self, table: pa.Table) -> pa.Table:
        return enrich(table, self.rib(), self.attribution())


def build_enricher(settings: Settings, store: Store | None) -> Callable[[pa.Table], pa.Table]:
    """FLOW_SCHEMA table -> ENRICHED_SCHEMA table, for the collector path."""
    return Enricher(settings, store)
