"""The RIB snapshot: one route per prefix as an Arrow table, persisted as Arrow IPC.

Columns (``RIB_SCHEMA``): family (4|6), plen, the network as (net_hi, net_lo)
uint64 halves in the family's own space (IPv4: net_hi = 0, net_lo = the
32-bit network), origin_as, as_path (list<uint32>), as_path_text (bgpdump
style), communities (list<string>), next_hop, peer. The collector and the
reports memory-map the file and build a :class:`PrefixIndex` from it.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from aupguard import netaddr
from aupguard.errors import InputError
from aupguard.routing.lpm import NO_ROUTE, PrefixIndex

if TYPE_CHECKING:  # pragma: no cover
    from aupguard.config import Settings
    from aupguard.routing.mrt import Attrs, MrtResult

RIB_SCHEMA = pa.schema([
    pa.field("family", pa.uint8(), nullable=False),
    pa.field("plen", pa.uint8(), nullable=False),
    pa.field("net_hi", pa.uint64(), nullable=False),
    pa.field("net_lo", pa.uint64(), nullable=False),
    pa.field("origin_as", pa.uint32(), nullable=False),
    pa.field("as_path", pa.list_(pa.uint32())),
    pa.field("as_path_text", pa.string()),
    pa.field("communities", pa.list_(pa.string())),
    pa.field("next_hop", pa.string()),
    pa.field("peer", pa.string()),
])
M64 = (1 << 64) - 1


def rib_path(settings: Settings) -> Path:
    configured = settings.routing.rib_file
    if configured is not None:
        return Path(configured)
    return Path(settings.data_dir) / "routing" / "rib.arrow"


def prefix_text(family: int, hi: int, lo: int, plen: int) -> str:
    if family == 4:
        return f"{ipaddress.IPv4Address(int(lo))}/{plen}"
    return f"{ipaddress.IPv6Address((int(hi) << 64) | int(lo))}/{plen}"


class Rib:
    """An immutable RIB snapshot plus its longest-prefix-match index."""

    def __init__(self, table: pa.Table, metadata: Mapping[str, str] | None = None):
        self.table = table.cast(RIB_SCHEMA) if table.schema != RIB_SCHEMA else table
        self.metadata = dict(metadata or {})
        self._index: PrefixIndex | None = None

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def index(self) -> PrefixIndex:
        if self._index is None:
            t = self.table
            self._index = PrefixIndex(
                t.column("family").to_numpy(), t.column("net_hi").to_numpy(),
                t.column("net_lo").to_numpy(), t.column("plen").to_numpy())
        return self._index

    # -- building ----------------------------------------------------------------
    @classmethod
    def empty(cls) -> Rib:
        return cls(RIB_SCHEMA.empty_table())

    @classmethod
    def from_mrt(cls, result: MrtResult, source: str = "") -> Rib:
        """Columns from the reader's routes; attributes are decoded once per distinct set."""
        attr_ids: dict[int, int] = {}
        attr_list: list[Attrs] = []
        fam, plens, his, los, aidx, peers = [], [], [], [], [], []
        for (family, net, plen), (attrs, peer) in result.routes.items():
            k = id(attrs)
            a = attr_ids.get(k)
            if a is None:
                a = attr_ids[k] = len(attr_list)
                attr_list.append(attrs)
            fam.append(family)
            plens.append(plen)
            his.append(net >> 64)
            los.append(net & M64)
            aidx.append(a)
            peers.append(peer)
        attrs_table = pa.table({
            "origin_as": pa.array([a.origin_as for a in attr_list], pa.uint32()),
            "as_path": pa.array([list(a.as_path) for a in attr_list], pa.list_(pa.uint32())),
            "as_path_text": pa.array([a.as_path_text for a in attr_list], pa.string()),
            "communities": pa.array([list(a.communities) for a in attr_list], pa.list_(pa.string())),
            "next_hop": pa.array([a.next_hop for a in attr_list], pa.string()),
        })
        taken = attrs_table.take(pa.array(aidx, pa.int64()))
        table = pa.table({
            "family": pa.array(fam, pa.uint8()),
            "plen": pa.array(plens, pa.uint8()),
            "net_hi": pa.array(his, pa.uint64()),
            "net_lo": pa.array(los, pa.uint64()),
            **{name: taken.column(name) for name in taken.column_names},
            "peer": pa.array(peers, pa.string()),
        }).select(RIB_SCHEMA.names)
        meta = {"source": source, "loaded_at": datetime.now(timezone.utc).isoformat(),
                "records": str(result.records)}
        return cls(table, meta)

    @classmethod
    def from_routes(cls, routes: Iterable[Mapping[str, Any]], source: str = "") -> Rib:
        """From dicts with prefix, as_path (list), communities, next_hop, peer (scalar path:
        for the live speaker and tests, not for full tables)."""
        rows = {name: [] for name in RIB_SCHEMA.names}
        for r in routes:
            net = ipaddress.ip_network(r["prefix"], strict=False)
            value = int(net.network_address)
            path = [int(a) for a in r.get("as_path", [])]
            rows["family"].append(net.version)
            rows["plen"].append(net.prefixlen)
            rows["net_hi"].append(value >> 64)
            rows["net_lo"].append(value & M64)
            rows["origin_as"].append(int(r.get("origin_as", path[-1] if path else 0)))
            rows["as_path"].append(path)
            rows["as_path_text"].append(r.get("as_path_text", " ".join(str(a) for a in path)))
            rows["communities"].append([str(c) for c in r.get("communities", [])])
            rows["next_hop"].append(str(r.get("next_hop", "")))
            rows["peer"].append(str(r.get("peer", "")))
        return cls(pa.table(rows, schema=RIB_SCHEMA), {"source": source})

    # -- persistence -------------------------------------------------------------
    def save(self, path: Path) -> Path:
        """Atomic write (temporary file + rename): readers never see half a snapshot."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        meta = {k.encode(): str(v).encode() for k, v in self.metadata.items()}
        table = self.table.replace_schema_metadata(meta)
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=1 << 20)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: Path) -> Rib:
        path = Path(path)
        if not path.exists():
            raise InputError(
                f"no RIB snapshot at {path}: load one with `aupguard routes load FILE.mrt`"
                " or configure [routing] neighbours for a live feed")
        try:
            with pa.memory_map(str(path)) as source:
                table = pa.ipc.open_file(source).read_all()
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{path} is not a RIB snapshot ({exc}); reload it with `aupguard routes load`") from None
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        return cls(table.replace_schema_metadata(None), meta)

    # -- lookups ---------------------------------------------------------------------
    def lookup_hilo(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Route ids (row numbers, -1 none) for mapped (hi, lo) addresses."""
        if len(self) == 0:
            return np.full(len(hi), NO_ROUTE, dtype=np.int32)
        return self.index.lookup(hi, lo)

    def route(self, row: int) -> dict[str, Any]:
        r = self.table.slice(row, 1).to_pylist()[0]
        return {
            "prefix": prefix_text(r["family"], r["net_hi"], r["net_lo"], r["plen"]),
            "origin_as": r["origin_as"],
            "as_path": r["as_path"],
            "as_path_text": r["as_path_text"],
            "communities": r["communities"],
            "next_hop": r["next_hop"],
            "peer": r["peer"],
        }

    def lookup(self, address: str) -> dict[str, Any] | None:
        """The best route for one address, for the CLI and API (None: no route)."""
        try:
            addr = netaddr.parse_address(address)
        except ValueError:
            raise InputError(f"{address!r} is not an IPv4 or IPv6 address") from None
        hi, lo = netaddr.int_to_hilo([netaddr.address_int(addr)])
        row = int(self.lookup_hilo(hi, lo)[0])
        return None if row == NO_ROUTE else self.route(row)
