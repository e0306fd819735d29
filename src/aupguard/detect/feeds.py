"""Threat feeds: C2 and hijacked-space lists loaded with `aupguard feeds load`.

Formats (feed files are hostile input: sizes capped, every bad line counted):

- ``plain``: one IP address or CIDR per line; ``#`` / ``;`` comments.
- ``drop``: Spamhaus DROP/EDROP text (``1.10.16.0/20 ; SBL256894``) or its JSON-lines
  successor (``{"cidr": "1.10.16.0/20", "sblid": "SBL256894", ...}``).
- ``feodo``: abuse.ch Feodo Tracker CSV (``first_seen_utc,dst_ip,dst_port,c2_status,
  last_online,malware``) with ``#`` comment lines.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from aupguard.detect.models import FeedEntry
from aupguard.errors import InputError
from aupguard.store import audit
from aupguard.store.types import utcnow

FORMATS = ("plain", "drop", "feodo")
MAX_BYTES = 64 * 1024 * 1024
MAX_LINE = 2000
MAX_ERRORS_KEPT = 20


@dataclass
class ParseResult:
    entries: list[tuple[str, str]] = field(default_factory=list)   # (prefix, label)
    bad: int = 0
    errors: list[str] = field(default_factory=list)

    def fail(self, line_no: int, why: str) -> None:
        self.bad += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(f"line {line_no}: {why}")


def _prefix(text: str) -> str:
    return str(ipaddress.ip_network(text.strip(), strict=False))


def _add(result: ParseResult, line_no: int, value: str, label: str) -> None:
    try:
        result.entries.append((_prefix(value), label[:300]))
    except ValueError:
        result.fail(line_no, f"{value[:60]!r} is not an IP address or prefix")


def parse_plain(text: str) -> ParseResult:
    result = ParseResult()
    for no, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE:
            result.fail(no, "line too long")
            continue
        body = line.split("#", 1)[0].split(";", 1)[0].strip()
        if body:
            _add(result, no, body.split()[0], "")
    return result


def parse_drop(text: str) -> ParseResult:
    result = ParseResult()
    for no, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith((";", "#")):
            continue
        if len(line) > MAX_LINE:
            result.fail(no, "line too long")
            continue
        if stripped.startswith("{"):
            try:
                record = json.loads(stripped)
            except json.JSONDecodeError:
                result.fail(no, "invalid JSON")
                continue
            if not isinstance(record, dict):
                result.fail(no, "JSON line is not an object")
            elif "cidr" in record:
                _add(result, no, str(record["cidr"]), str(record.get("sblid", "")))
            elif "type" not in record:  # the trailing metadata line has "type": "metadata"
                result.fail(no, "JSON object without a cidr")
            continue
        body, _, comment = stripped.partition(";")
        _add(result, no, body.strip(), comment.strip())
    return result


def parse_feodo(text: str) -> ParseResult:
    result = ParseResult()
    lines = [(no, line) for no, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    header = ["first_seen_utc", "dst_ip", "dst_port", "c2_status", "last_online", "malware"]
    reader = csv.reader(io.StringIO("\n".join(line[:MAX_LINE] for _, line in lines)))
    for (no, _), row in zip(lines, reader):
        cells = [c.strip() for c in row]
        if cells and cells[0].lower() in ("first_seen_utc", "first_seen"):
            header = [c.lower() for c in cells]
            continue
        record = dict(zip(header, cells))
        ip = record.get("dst_ip") or record.get("ip_address")
        if not ip:
            result.fail(no, "no dst_ip column")
            continue
        label = " ".join(filter(None, [record.get("malware", ""), record.get("c2_status", "")]))
        _add(result, no, ip, label)
    return result


PARSERS = {"plain": parse_plain, "drop": parse_drop, "feodo": parse_feodo}


def parse(path: Path, fmt: str) -> ParseResult:
    if fmt not in PARSERS:
        raise InputError(f"unknown feed format {fmt!r}; use one of {', '.join(FORMATS)}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if size > MAX_BYTES:
        raise InputError(f"{path} is {size} bytes; feeds above {MAX_BYTES} bytes are refused")
    text = path.read_bytes().decode("utf-8", errors="replace")
    return PARSERS[fmt](text)


def load(session: Session, path: Path, fmt: str, name: str | None = None,
         actor: str = "cli") -> tuple[str, ParseResult]:
    """Replace the entries of feed `name` (default: the file's stem) with the file's."""
    result = parse(path, fmt)
    feed = (name or path.stem)[:100]
    if not result.entries:
        raise InputError(f"{path}: no valid entries in {fmt} format ({result.bad} bad lines"
                         + (f"; first: {result.errors[0]}" if result.errors else "") + ")")
    before = session.execute(select(FeedEntry.id).where(FeedEntry.feed == feed)).all()
    session.execute(delete(FeedEntry).where(FeedEntry.feed == feed))
    now = utcnow()
    unique = dict(result.entries)
    session.add_all(FeedEntry(feed=feed, format=fmt, prefix=p, label=label, loaded_at=now)
                    for p, label in unique.items())
    session.flush()
    audit.record(session, actor, "feed.load", "feed", feed,
                 before={"entries": len(before)},
                 after={"entries": len(unique), "format": fmt, "bad_lines": result.bad,
                        "file": str(path)})
    return feed, result


def entries(session: Session) -> list[FeedEntry]:
    return list(session.execute(select(FeedEntry).order_by(FeedEntry.id)).scalars())
