"""Timestamps as complaints write them, to aware UTC datetimes.

Hand-written on top of the standard library because every format family
needs its own quirk: RFC 2822 dates with zone names in comments ("-0500 (EST)"),
ISO 8601 with a space before the offset, Shadowserver's naive "Y-m-d H:M:S"
(UTC by definition), and free-text times that may carry no zone at all.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

_COMMENT = re.compile(r"\([^)]*\)")
_ISO_SPACE_OFFSET = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2})?$",
    re.I)
_EARLIEST = datetime(1990, 1, 1, tzinfo=timezone.utc)


def parse_time(text: str | None, *, naive_is_utc: bool = True) -> tuple[datetime | None, bool]:
    """(UTC datetime or None, had_zone). Naive times are taken as UTC when allowed."""
    if not text:
        return None, False
    value = _COMMENT.sub("", str(text)).strip().strip(",;")
    if not value or len(value) > 80:
        return None, False
    match = _ISO_SPACE_OFFSET.match(value)
    if match:
        date, clock, zone = match.groups()
        iso = f"{date}T{clock}"
        has_zone = zone is not None
        if zone and zone.upper() in ("Z", "UTC", "GMT"):
            iso += "+00:00"
        elif zone:
            iso += zone if ":" in zone else zone[:3] + ":" + zone[3:]
        try:
            parsed = datetime.fromisoformat(iso)
        except ValueError:
            return None, False
        return _finish(parsed, has_zone, naive_is_utc)
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None, False
    if parsed is None:
        return None, False
    return _finish(parsed, parsed.tzinfo is not None, naive_is_utc)


def _finish(parsed: datetime, has_zone: bool, naive_is_utc: bool) -> tuple[datetime | None, bool]:
    if parsed.tzinfo is None:
        if not naive_is_utc:
            return None, False
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        parsed = parsed.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None, False
    if parsed < _EARLIEST or parsed.year > 2200:
        return None, False  # a typo or a hostile value, not an event time
    return parsed, has_zone


def utc(text: str | None) -> datetime | None:
    return parse_time(text)[0]
