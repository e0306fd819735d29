"""NetFlow v9 / IPFIX templates compiled to numpy structured dtypes.

A template's field list becomes one big-endian structured dtype with explicit
offsets that names only the information elements (IEs) we read; ``itemsize``
is the record length, so ``np.frombuffer`` walks a whole data set in one call.
Fields of odd lengths (reduced-size encoding, RFC 7011 s6.2) are read as byte
sub-arrays and folded into integers with one vectorised dot product.

Templates with variable-length fields (IPFIX, length 65535) cannot be a fixed
dtype: ``split_varlen`` walks those records one by one (the slow path, in
Python because each record's layout depends on its own length prefixes) and
re-packs the fixed fields so the same dtype machinery reads them afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

VARLEN = 65535

# IEs read as addresses (IPFIX numbering; NetFlow v9 shares it for these ids).
ADDR4_IES = {8, 12, 15, 18, 130}
ADDR6_IES = {27, 28, 62, 63, 131}
# IEs read as unsigned integers.
INT_IES = {
    1,
    2,
    4,
    6,
    7,
    9,
    10,
    11,
    13,
    14,
    16,
    17,
    21,
    22,
    29,
    30,
    32,
    34,
    35,
    48,
    49,
    50,
    61,
    85,
    86,
    139,
    150,
    151,
    152,
    153,
    154,
    155,
    156,
    157,
    158,
    159,
    160,
    302,
    305,
    306,
    309,
    310,
    252,
    253,
}
WANTED = ADDR4_IES | ADDR6_IES | INT_IES | {312}
FRAME_SECTION_IE = 315  # dataLinkFrameSection: a sampled L2 frame (parsed like an sFlow header)
FRAME_KEEP = 128  # bytes of it kept for header parsing

MAX_FIELDS = 512  # no real template has more; bounds work on hostile input
MAX_RECORD_LEN = 65535


@dataclass(frozen=True)
class FieldSpec:
    ie: int
    length: int
    pen: int = 0  # enterprise number (IPFIX); enterprise IEs are skipped by length


@dataclass
class Template:
    version: int
    template_id: int
    fields: tuple[FieldSpec, ...]
    scope_count: int = 0  # options templates: leading scope fields
    is_options: bool = False
    # compiled
    record_len: int = 0  # fixed part length (all fields when not varlen)
    varlen: bool = False
    dtype: np.dtype = field(default=None)  # over the fixed-only layout
    columns: dict[int, tuple[str, int]] = field(default_factory=dict)  # ie -> (field name, length)
    scope_columns: dict[int, tuple[str, int]] = field(default_factory=dict)
    segments: tuple[int, ...] = ()  # varlen: fixed-run lengths between variable fields
    frame_field: int = -1  # index of dataLinkFrameSection (IE 315, a sampled frame), -1 if none

    def same_layout(self, other: Template) -> bool:
        return (
            self.fields == other.fields
            and self.scope_count == other.scope_count
            and self.is_options == other.is_options
        )


def compile_template(t: Template) -> Template:
    """Fill in dtype/columns/record_len; raises ValueError on unusable templates."""
    if not t.fields:
        raise ValueError("template has no fields")
    if len(t.fields) > MAX_FIELDS:
        raise ValueError(f"template has {len(t.fields)} fields (limit {MAX_FIELDS})")
    names, formats, offsets = [], [], []
    columns: dict[int, tuple[str, int]] = {}
    scope_columns: dict[int, tuple[str, int]] = {}
    segments: list[int] = []
    run = 0
    offset = 0
    for i, f in enumerate(t.fields):
        if f.ie == FRAME_SECTION_IE and f.pen == 0 and t.frame_field < 0:
            t.frame_field = i
        if f.length == VARLEN:
            t.varlen = True
            segments.append(run)
            run = 0
            continue
        target = scope_columns if (t.is_options and i < t.scope_count) else columns
        if (
            f.pen == 0
            and f.length > 0
            and f.ie not in target
            and (f.ie in WANTED or target is scope_columns)
        ):
            name = f"f{i}"
            names.append(name)
            offsets.append(offset)
            if f.ie in ADDR6_IES or f.length not in (1, 2, 4, 8):
                formats.append((np.uint8, (f.length,)))
            else:
                formats.append(f">u{f.length}")
            target[f.ie] = (name, f.length)
        offset += f.length
        run += f.length
    segments.append(run)
    if offset > MAX_RECORD_LEN:
        raise ValueError(f"record length {offset} exceeds {MAX_RECORD_LEN}")
    if offset == 0 and not t.varlen:
        raise ValueError("template records have zero length")
    t.record_len = offset
    t.segments = tuple(segments)
    t.dtype = np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": max(offset, 1)}
    )
    t.columns = columns
    t.scope_columns = scope_columns
    return t


def as_native(recs: np.ndarray, name: str, length: int) -> np.ndarray:
    """An integer field in native byte order, keeping its width (one conversion, not two)."""
    col = recs[name]
    if col.ndim == 1:
        return col.astype(col.dtype.newbyteorder("="))
    return as_uint(recs, name, length)


def as_uint(recs: np.ndarray, name: str, length: int) -> np.ndarray:
    """An integer field as uint64, whatever its encoded length."""
    col = recs[name]
    if col.ndim == 1:
        return col.astype(np.uint64)
    if length > 8:  # over-long integer encoding: keep the low 8 bytes
        col = col[:, -8:]
        length = 8
    weights = (np.uint64(256) ** np.arange(length - 1, -1, -1, dtype=np.uint64)).astype(np.uint64)
    return (col.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)


def split_varlen(
    t: Template, body: memoryview, max_records: int
) -> tuple[bytes, int, bool, list[bytes]]:
    """Slow path: repack records of a varlen template into fixed-only records.

    Returns (packed bytes, record count, ok, frames). ok is False when a length
    prefix runs past the set (the records before it are still returned).
    ``frames`` holds the first FRAME_KEEP bytes of each record's IE 315 when the
    template has one.
    """
    out: list[bytes] = []
    frames: list[bytes] = []
    pos, end, n = 0, len(body), 0
    fields = t.fields
    frame_at = t.frame_field
    min_len = t.record_len + sum(1 for f in fields if f.length == VARLEN)
    while end - pos >= max(min_len, 1) and n < max_records:
        chunks: list[bytes] = []
        frame = b""
        for i, f in enumerate(fields):
            if f.length == VARLEN:
                if pos >= end:
                    return b"".join(out), n, False, frames
                ln = body[pos]
                pos += 1
                if ln == 255:
                    if pos + 2 > end:
                        return b"".join(out), n, False, frames
                    ln = (body[pos] << 8) | body[pos + 1]
                    pos += 2
                if i == frame_at:
                    frame = bytes(body[pos : pos + min(ln, FRAME_KEEP)])
                pos += ln
            else:
                chunks.append(bytes(body[pos : pos + f.length]))
                pos += f.length
            if pos > end:
                return b"".join(out), n, False, frames
        out.append(b"".join(chunks))
        frames.append(frame)
        n += 1
    return b"".join(out), n, True, frames
