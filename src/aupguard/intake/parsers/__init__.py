"""Complaint parsers. Importing this package registers every parser in REGISTRY."""

from aupguard.intake.parsers import (  # noqa: F401 - imported for registration
    acns,
    arf,
    freetext,
    shadowserver,
    spamcop,
    xarf,
)
from aupguard.intake.parsers.base import REGISTRY, ParseContext, choose

__all__ = ["REGISTRY", "ParseContext", "choose", "parse"]


def parse(complaint, ctx: ParseContext | None = None):
    """(parser name, events) for a complaint, errors appended to ctx.errors."""
    ctx = ctx or ParseContext()
    parser = choose(complaint)
    try:
        events = parser.parse(complaint, ctx)
    except Exception as exc:  # noqa: BLE001 - record, keep the raw message, move on
        ctx.errors.append(f"{parser.name} parser failed: {exc.__class__.__name__}: {exc}"[:500])
        events = []
    if len(events) > ctx.max_events:
        ctx.errors.append(f"{len(events)} events; only the first {ctx.max_events} kept")
        events = events[:ctx.max_events]
    return parser.name, events
