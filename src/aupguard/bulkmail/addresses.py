"""Address normalisation and hashing, vectorised (pyarrow / DuckDB) with scalar twins.

Normalised form: surrounding whitespace and angle brackets removed, lower-cased
(local parts are case-sensitive in theory, never in practice for suppression).
No provider-specific folding (gmail dots): that would merge distinct people.
The scalar functions call the vectorised ones so both always agree.
"""

from __future__ import annotations

import hashlib
import re

import pyarrow as pa
import pyarrow.compute as pc

ADDRESS_RE = r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>.]+$"
DOMAIN_RE = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$"
MAX_LENGTH = 320  # RFC 5321: 64 local + @ + 255 domain


def normalise_arrow(values: pa.Array | pa.ChunkedArray, with_domain: bool = True) -> pa.Table:
    """Columns: norm (normalised address), valid (bool), and domain unless not wanted."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = pc.cast(values, pa.large_string()) if values.type != pa.large_string() else values
    values = pc.fill_null(values, "")
    norm = pc.utf8_lower(pc.utf8_trim(pc.utf8_trim_whitespace(values), "<>"))
    norm = pc.utf8_trim_whitespace(norm)
    valid = pc.and_(pc.match_substring_regex(norm, ADDRESS_RE),
                    pc.less_equal(pc.utf8_length(norm), MAX_LENGTH))
    if not with_domain:
        return pa.table({"norm": norm, "valid": valid})
    domain = pc.struct_field(pc.extract_regex(norm, r"@(?P<d>[^@]+)$"), [0])
    return pa.table({"norm": norm, "domain": pc.fill_null(domain, ""), "valid": valid})


def normalise_address(text: str) -> str:
    return normalise_arrow(pa.array([text]))["norm"][0].as_py()


def normalise_domain(text: str) -> str:
    """'@Example.COM.' -> 'example.com'."""
    return text.strip().lstrip("@").rstrip(".").lower()


def is_address(norm: str) -> bool:
    return bool(re.match(ADDRESS_RE, norm)) and len(norm) <= MAX_LENGTH


def is_domain(norm: str) -> bool:
    return bool(re.match(DOMAIN_RE, norm))


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_arrow(values: pa.Array) -> pa.Array:
    """SHA-256 hex of every string, in DuckDB (vectorised C++, same bytes as hashlib)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("tbl", pa.table({"v": values}))
        return con.sql("SELECT sha256(v) AS h FROM tbl").to_arrow_table().column("h").combine_chunks()
    finally:
        con.close()
