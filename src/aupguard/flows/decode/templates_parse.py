"""Parsing of NetFlow v9 / IPFIX template and options-template sets.

Each function walks one set body (bounded by its length, so a hostile set
cannot loop) and returns the templates it defines, the template ids it
withdraws (IPFIX) and the errors it met. Scalar code on purpose: template sets
are rare and short, the data sets they describe are the hot path.
"""

from __future__ import annotations

import struct

from aupguard.flows.decode.template import FieldSpec, Template, compile_template

Result = tuple[list[Template], list[int], list[str]]


def _compile(t: Template, errors: list[str], out: list[Template]) -> None:
    try:
        out.append(compile_template(t))
    except ValueError:
        errors.append("bad_template")


def parse_v9_templates(body: bytes) -> Result:
    out: list[Template] = []
    errors: list[str] = []
    pos, end = 0, len(body)
    while end - pos >= 4:
        tid, count = struct.unpack_from(">HH", body, pos)
        if tid == 0 and count == 0:  # padding
            break
        pos += 4
        if count == 0 or end - pos < 4 * count:
            errors.append("template_truncated")
            break
        raw = struct.unpack_from(f">{2 * count}H", body, pos)
        pos += 4 * count
        if tid < 256:
            errors.append("bad_template_id")
            continue
        fields = tuple(FieldSpec(raw[i], raw[i + 1]) for i in range(0, 2 * count, 2))
        if any(f.length == 0xFFFF for f in fields):  # v9 has no variable-length fields
            errors.append("bad_template")
            continue
        _compile(Template(9, tid, fields), errors, out)
    return out, [], errors


def parse_v9_options_templates(body: bytes) -> Result:
    out: list[Template] = []
    errors: list[str] = []
    pos, end = 0, len(body)
    while end - pos >= 6:
        tid, scope_len, opt_len = struct.unpack_from(">HHH", body, pos)
        if tid == 0:
            break
        pos += 6
        if (
            scope_len % 4
            or opt_len % 4
            or end - pos < scope_len + opt_len
            or scope_len + opt_len == 0
        ):
            errors.append("template_truncated")
            break
        n = (scope_len + opt_len) // 4
        raw = struct.unpack_from(f">{2 * n}H", body, pos)
        pos += scope_len + opt_len
        if tid < 256:
            errors.append("bad_template_id")
            continue
        fields = tuple(FieldSpec(raw[i], raw[i + 1]) for i in range(0, 2 * n, 2))
        _compile(Template(9, tid, fields, scope_count=scope_len // 4, is_options=True), errors, out)
    return out, [], errors


def _ipfix_fields(
    body: bytes, pos: int, end: int, count: int
) -> tuple[tuple[FieldSpec, ...] | None, int]:
    fields = []
    for _ in range(count):
        if end - pos < 4:
            return None, pos
        ie, length = struct.unpack_from(">HH", body, pos)
        pos += 4
        pen = 0
        if ie & 0x8000:
            if end - pos < 4:
                return None, pos
            (pen,) = struct.unpack_from(">I", body, pos)
            pos += 4
            ie &= 0x7FFF
        fields.append(FieldSpec(ie, length, pen))
    return tuple(fields), pos


def parse_ipfix_templates(body: bytes, options: bool) -> Result:
    out: list[Template] = []
    withdrawn: list[int] = []
    errors: list[str] = []
    pos, end = 0, len(body)
    while end - pos >= 4:
        tid, count = struct.unpack_from(">HH", body, pos)
        if tid < 256 and not (count == 0 and tid in (2, 3)):
            if tid != 0 or count != 0:
                errors.append("bad_template_id")
            break  # padding (or garbage): stop
        pos += 4
        if count == 0:  # withdrawal (tid 2/3 = all of that kind)
            withdrawn.append(tid)
            continue
        scope = 0
        if options:
            if end - pos < 2:
                errors.append("template_truncated")
                break
            (scope,) = struct.unpack_from(">H", body, pos)
            pos += 2
            if scope == 0 or scope > count:
                errors.append("bad_template")
                break
        fields, pos = _ipfix_fields(body, pos, end, count)
        if fields is None:
            errors.append("template_truncated")
            break
        _compile(Template(10, tid, fields, scope_count=scope, is_options=options), errors, out)
    return out, withdrawn, errors
