"""ARF feedback reports: RFC 5965, RFC 6591 auth-failure, RFC 6692 Source-Port,
and Microsoft JMRP (no feedback-report part, no Source-IP: the sending address is
taken from the Received chain of the enclosed original message)."""

from __future__ import annotations

import re
from email.message import Message

from aupguard.intake.events import ComplaintEvent, normalise_ip, normalise_port
from aupguard.intake.mime import Complaint, header_text
from aupguard.intake.parsers.base import ParseContext, excerpt, register
from aupguard.intake.timeparse import parse_time

FEEDBACK_CATEGORY = {
    "abuse": "spam", "opt-out": "spam", "fraud": "phishing", "virus": "malware",
    "auth-failure": "auth-failure", "other": "spam",
}
# "from host (name [192.0.2.1])", "from [192.0.2.1]", "(192.0.2.1)" in the from-clause.
_RECEIVED_FROM_IP = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]|\(([0-9.]{7,15})\)")


def received_origin(headers: Message) -> tuple[str | None, str]:
    """(sender address, date text) from the topmost Received header with a public hop."""
    for value in headers.get_all("Received") or []:
        text = header_text(value)
        from_clause, _, rest = text.partition(" by ")
        if not from_clause.lower().startswith("from"):
            continue
        for match in _RECEIVED_FROM_IP.finditer(from_clause):
            ip = normalise_ip(match.group(1) or match.group(2))
            if ip and not ip.startswith("127.") and ip != "::1":
                return ip, text.rpartition(";")[2].strip()
    return None, ""


def _field(fields: Message, *names: str) -> str:
    for name in names:
        value = fields.get(name)
        if value:
            return header_text(value)
    return ""


def _is_jmrp(complaint: Complaint) -> bool:
    for part in complaint.find("message/rfc822"):
        if part.headers is not None and part.headers.get("X-HmXmrOriginalRecipient"):
            return True
    return False


@register
class ArfParser:
    name = "arf"

    def detect(self, complaint: Complaint) -> int:
        if complaint.find("message/feedback-report"):
            return 100
        if _is_jmrp(complaint):
            return 90
        return 0

    def parse(self, complaint: Complaint, ctx: ParseContext) -> list[ComplaintEvent]:
        reports = complaint.find("message/feedback-report")
        enclosed = [p for p in complaint.find("message/rfc822") if p.headers is not None]
        original = enclosed[0].headers if enclosed else None
        subject = header_text(original.get("Subject")) if original is not None else ""
        if not reports:  # Microsoft JMRP: everything comes from the enclosed message
            return self._jmrp(complaint, original, subject, ctx)
        events = []
        for report in reports:
            fields = report.headers
            feedback = _field(fields, "Feedback-Type").lower() or "abuse"
            if feedback == "not-spam":
                ctx.errors.append("feedback type not-spam: nothing to act on")
                continue
            category = FEEDBACK_CATEGORY.get(feedback, "spam")
            ip = normalise_ip(_field(fields, "Source-IP"))
            port = normalise_port(_field(fields, "Source-Port"))
            when, _ = parse_time(_field(fields, "Arrival-Date", "Received-Date"))
            if ip is None and original is not None:
                ip, date_text = received_origin(original)
                when = when or parse_time(date_text)[0]
            if when is None and original is not None:
                when = parse_time(header_text(original.get("Date")))[0]
            evidence = report.text + (f"\nOriginal-Subject: {subject}" if subject else "")
            events.append(ComplaintEvent(
                ip=ip, port=port, time=when, category=category, parser=self.name,
                excerpt=excerpt(evidence, ctx.excerpt_chars),
                domain=_field(fields, "Reported-Domain")[:255],
                extra={"feedback_type": feedback,
                       "auth_failure": _field(fields, "Auth-Failure"),
                       "user_agent": _field(fields, "User-Agent")[:200]}))
        return events

    def _jmrp(self, complaint, original, subject, ctx) -> list[ComplaintEvent]:
        if original is None:
            return []
        ip, date_text = received_origin(original)
        when = parse_time(date_text)[0] or parse_time(header_text(original.get("Date")))[0]
        if ip is None:
            ctx.errors.append("JMRP report without a usable Received header in the "
                              "enclosed message")
        evidence = "\n".join(f"{k}: {header_text(v)}" for k, v in original.items()
                             if k.lower() in ("received", "from", "subject", "date",
                                              "message-id"))
        return [ComplaintEvent(ip=ip, time=when, category="spam", parser="arf-jmrp",
                               excerpt=excerpt(evidence, ctx.excerpt_chars),
                               extra={"feedback_type": "jmrp"})]
