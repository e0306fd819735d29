"""ACNS 2.0 copyright notices: <Infringement> XML, inline (often PGP clear-signed) or attached."""

from __future__ import annotations

import re

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from aupguard.intake.events import ComplaintEvent, normalise_ip, normalise_port
from aupguard.intake.mime import Complaint
from aupguard.intake.parsers.base import ParseContext, excerpt, register
from aupguard.intake.timeparse import parse_time

_BLOCK = re.compile(r"<Infringement\b.*?</Infringement>", re.S)
MAX_XML = 1024 * 1024


def _undash(text: str) -> str:
    """Undo OpenPGP clear-sign dash-escaping ("- -----" -> "-----")."""
    return re.sub(r"(?m)^- ", "", text)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(node, *path: str):
    """Namespace-agnostic child lookup (notices use the ACNS namespace, or none)."""
    for name in path:
        if node is None:
            return None
        node = next((c for c in node if _local(c.tag) == name), None)
    return node


def _text(node, *path: str) -> str:
    found = _find(node, *path)
    return (found.text or "").strip() if found is not None and found.text else ""


@register
class AcnsParser:
    name = "acns"

    def _blocks(self, complaint: Complaint) -> list[str]:
        blocks = []
        for part in complaint.parts:
            if part.enclosed or not (part.content_type.startswith("text/")
                                     or "xml" in part.content_type):
                continue
            if "<Infringement" not in part.text:
                continue
            blocks.extend(_BLOCK.findall(_undash(part.text)))
        return blocks

    def detect(self, complaint: Complaint) -> int:
        return 85 if self._blocks(complaint) else 0

    def parse(self, complaint: Complaint, ctx: ParseContext) -> list[ComplaintEvent]:
        events, seen = [], set()
        for block in self._blocks(complaint):
            if len(block) > MAX_XML:
                ctx.errors.append("ACNS XML larger than 1 MiB: not parsed")
                continue
            try:
                root = ElementTree.fromstring(block, forbid_dtd=True)
            except (ElementTree.ParseError, DefusedXmlException, ValueError) as exc:
                ctx.errors.append(f"ACNS XML unreadable: {exc.__class__.__name__}: {exc}"[:300])
                continue
            ip = normalise_ip(_text(root, "Source", "IP_Address"))
            port = normalise_port(_text(root, "Source", "Port"))
            when, _ = parse_time(_text(root, "Source", "TimeStamp"))
            case_id = _text(root, "Case", "ID")[:100]
            key = (case_id, ip, port, when)
            if key in seen:  # the same notice inline and attached
                continue
            seen.add(key)
            events.append(ComplaintEvent(
                ip=ip, port=port, time=when, category="copyright", parser=self.name,
                excerpt=excerpt(block, ctx.excerpt_chars),
                reporter=_text(root, "Complainant", "Email")[:254],
                extra={"case_id": case_id,
                       "complainant": _text(root, "Complainant", "Entity")[:200],
                       "title": _text(root, "Content", "Item", "Title")[:300],
                       "protocol": _text(root, "Source", "Type")[:50]}))
        return events
