"""The parser registry: each parser says how sure it is that it understands a complaint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from aupguard.intake.events import ComplaintEvent
from aupguard.intake.mime import Complaint


@dataclass
class ParseContext:
    """What parsers may need beyond the complaint: catalogues and caps."""

    excerpt_chars: int = 2000
    max_events: int = 100000
    shadowserver_catalogue: dict | None = None
    xarf_schema_dir: str = ""
    errors: list[str] = field(default_factory=list)


class Parser(Protocol):
    name: str

    def detect(self, complaint: Complaint) -> int:
        """0: not mine; higher: more specific (free text answers 1)."""

    def parse(self, complaint: Complaint, ctx: ParseContext) -> list[ComplaintEvent]:
        """Events found; add a clear message to ctx.errors for anything skipped."""


REGISTRY: list[Parser] = []


def register(parser_cls):
    REGISTRY.append(parser_cls())
    return parser_cls


def choose(complaint: Complaint) -> Parser:
    """The parser that recognises the complaint most specifically."""
    best, best_score = None, 0
    for parser in REGISTRY:
        try:
            score = parser.detect(complaint)
        except Exception:  # noqa: BLE001 - a detector must never take intake down
            score = 0
        if score > best_score:
            best, best_score = parser, score
    assert best is not None, "the free-text parser always answers"
    return best


def excerpt(text: str, limit: int) -> str:
    """Evidence kept as plain text, capped; the console escapes it on display."""
    text = text.replace("\x00", "")
    return text if len(text) <= limit else text[:limit] + "\n[... truncated]"
