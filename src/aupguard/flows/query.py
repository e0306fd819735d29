"""Questions people ask the flow store: free SQL and nfdump-style top-N.

Both run in DuckDB over the ``flows`` view (:func:`aupguard.flows.store.open_duckdb`)
and return Arrow tables whose 16-byte address columns are rendered as text.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aupguard.errors import InputError
from aupguard.netaddr import address_int, parse_address

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

    from aupguard.config import Settings

TOP_KEYS = {
    "src": "src_addr",
    "dst": "dst_addr",
    "srcport": "src_port",
    "dstport": "dst_port",
    "proto": "proto",
    "exporter": "exporter",
}
TOP_ORDER = ("flows", "packets", "bytes")


def addresses_to_text(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """16-byte mapped addresses (fixed or variable binary) to text, vectorised for IPv4.

    IPv4 (the bulk) is built with Arrow string kernels; only IPv6 rows go through
    ``ipaddress`` for the canonical compressed form.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    n = len(array)
    if n == 0:
        return pa.array([], type=pa.string())
    valid = pc.is_valid(array).to_numpy(zero_copy_only=False)
    lengths = (pc.binary_length(array).fill_null(0).to_numpy(zero_copy_only=False)
               if not pa.types.is_fixed_size_binary(array.type) else np.full(n, 16))
    ok = valid & (lengths == 16)
    filled = array.filter(pa.array(ok)) if not ok.all() else array
    if pa.types.is_fixed_size_binary(filled.type):
        raw = np.frombuffer(filled.buffers()[1], dtype=np.uint8,
                            count=(filled.offset + len(filled)) * 16)[filled.offset * 16:]
    else:
        flat = pa.concat_arrays([filled]).cast(pa.binary())
        offsets = np.frombuffer(flat.buffers()[1], dtype=np.int32,
                                count=flat.offset + len(flat) + 1)[flat.offset:]
        data = np.frombuffer(flat.buffers()[2], dtype=np.uint8)
        raw = data[offsets[0]:offsets[-1]]
    raw = raw.reshape(-1, 16)
    is_v4 = (raw[:, :10] == 0).all(axis=1) & (raw[:, 10] == 0xFF) & (raw[:, 11] == 0xFF)
    octets = [pa.array(raw[:, 12 + i]).cast(pa.string()) for i in range(4)]
    dotted = pc.binary_join_element_wise(*octets, ".").to_numpy(zero_copy_only=False)
    text = dotted.astype(object)
    for i in np.flatnonzero(~is_v4):  # IPv6: rare, scalar formatting is fine
        text[i] = str(ipaddress.IPv6Address(raw[i].tobytes()))
    if ok.all():
        return pa.array(text, type=pa.string())
    out = np.full(n, None, dtype=object)
    out[ok] = text
    return pa.array(out, type=pa.string())


def render_addresses(table: pa.Table) -> pa.Table:
    """Every 16-byte binary column (fixed, or DuckDB BLOB of 16 bytes) shown as text."""
    for i, field in enumerate(table.schema):
        t = field.type
        if pa.types.is_fixed_size_binary(t) and t.byte_width == 16:
            table = table.set_column(i, field.name, addresses_to_text(table.column(i)))
        elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
            col = table.column(i).combine_chunks()
            lengths = pc.binary_length(col).drop_null()
            if len(lengths) and pc.all(pc.equal(lengths, 16)).as_py():
                table = table.set_column(i, field.name, addresses_to_text(col))
    return table


def _ip_bytes(text: pa.Array) -> pa.Array:
    out = []
    for value in text.to_pylist():
        if value is None:
            out.append(None)
            continue
        try:
            out.append(address_int(parse_address(value)).to_bytes(16, "big"))
        except ValueError:
            raise InputError(f"ip({value!r}): not an IPv4 or IPv6 address") from None
    return pa.array(out, type=pa.binary())


def register_functions(con: duckdb.DuckDBPyConnection) -> None:
    """ip_text(blob) -> varchar and ip(varchar) -> blob on a DuckDB connection."""
    import duckdb
    try:
        from duckdb.sqltypes import BLOB, VARCHAR
    except ImportError:  # duckdb < 1.4
        from duckdb.typing import BLOB, VARCHAR

    for name in ("ip_text", "ip"):
        try:
            con.remove_function(name)
        except (duckdb.InvalidInputException, duckdb.CatalogException):
            pass
    con.create_function("ip_text", addresses_to_text, [BLOB], VARCHAR, type="arrow",
                        null_handling="special")
    con.create_function("ip", _ip_bytes, [VARCHAR], BLOB, type="arrow", null_handling="special")


def _arrow(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pa.Table:
    """The query's result as an Arrow table (the method's name changed in DuckDB 1.4)."""
    rel = con.sql(sql, params=params) if params else con.sql(sql)
    if rel is None:  # a statement without a result (CREATE, SET, ...)
        return pa.table({})
    fetch = getattr(rel, "to_arrow_table", None) or rel.arrow
    return fetch()


def run_query(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Run one SQL statement; its result with addresses as text."""
    import duckdb

    try:
        result = _arrow(con, sql)
    except duckdb.Error as exc:
        raise InputError(f"query failed: {exc}") from None
    return render_addresses(result)


def top(
    con: duckdb.DuckDBPyConnection,
    by: str,
    since: datetime | None = None,
    until: datetime | None = None,
    where: str | None = None,
    order: str = "flows",
    limit: int = 10,
) -> pa.Table:
    """Top ``limit`` values of ``by`` like ``nfdump -s srcip/flows``: flows, packets,
    bytes and each one's share of the total of the selection (in %)."""
    if by not in TOP_KEYS:
        raise InputError(f"--by {by!r}: choose one of {', '.join(TOP_KEYS)}")
    if order not in TOP_ORDER:
        raise InputError(f"--order {order!r}: choose one of {', '.join(TOP_ORDER)}")
    if limit < 1:
        raise InputError("--limit must be at least 1")
    column = TOP_KEYS[by]
    conditions, params = [], []
    if since is not None:
        conditions.append('"start" >= ?')
        params.append(since)
    if until is not None:
        conditions.append('"start" < ?')
        params.append(until)
    if where:
        conditions.append(f"({where})")
    where_sql = ("WHERE " + " AND ".join(conditions)) if conditions else ""
    sql = f"""
        WITH sel AS (SELECT {column} AS key, packets, bytes FROM flows {where_sql}),
        grouped AS (
            SELECT key, count(*) AS flows, sum(packets)::BIGINT AS packets,
                   sum(bytes)::BIGINT AS bytes
            FROM sel GROUP BY key),
        total AS (SELECT sum(flows) AS f, sum(packets) AS p, sum(bytes) AS b FROM grouped)
        SELECT key AS {by}, flows, packets, bytes,
               round(100.0 * flows / nullif(total.f, 0), 2) AS flows_pct,
               round(100.0 * packets / nullif(total.p, 0), 2) AS packets_pct,
               round(100.0 * bytes / nullif(total.b, 0), 2) AS bytes_pct
        FROM grouped, total
        ORDER BY {order} DESC, key
        LIMIT {int(limit)}
    """
    import duckdb

    try:
        result = _arrow(con, sql, params)
    except duckdb.Error as exc:
        raise InputError(f"flows top failed (check --filter, it is a SQL condition "
                         f"such as \"proto = 6 AND dst_port = 25\"): {exc}") from None
    return render_addresses(result)


def open_for(settings: Settings) -> duckdb.DuckDBPyConnection:
    from aupguard.flows.store import open_duckdb

    return open_duckdb(settings)
