"""SpamCop reports: "[SpamCop (192.0.2.1) id:123]" subjects, "Email from IP / date" body."""

from __future__ import annotations

import re

from aupguard.intake.events import ComplaintEvent, normalise_ip
from aupguard.intake.mime import Complaint
from aupguard.intake.parsers.base import ParseContext, excerpt, register
from aupguard.intake.timeparse import parse_time

SUBJECT = re.compile(r"\[SpamCop \((?P<what>[^)\s]{1,2000})\) id:(?P<id>\d+)\]", re.I)
EMAIL_FROM = re.compile(r"^Email from (?P<ip>[0-9A-Fa-f:.]+) / (?P<when>.+)$", re.M)
SPAMVERTISED = re.compile(r"^Spamvertised web site: (?P<url>\S+)", re.M)


@register
class SpamCopParser:
    name = "spamcop"

    def detect(self, complaint: Complaint) -> int:
        if complaint.sender.endswith("@reports.spamcop.net") or SUBJECT.search(
                complaint.subject):
            return 95
        return 0

    def parse(self, complaint: Complaint, ctx: ParseContext) -> list[ComplaintEvent]:
        text = complaint.body_text()
        subject = SUBJECT.search(complaint.subject)
        report_id = subject.group("id") if subject else ""
        events = []
        for match in EMAIL_FROM.finditer(text):
            events.append(ComplaintEvent(
                ip=normalise_ip(match.group("ip")), time=parse_time(match.group("when"))[0],
                category="spam", parser=self.name,
                excerpt=excerpt(text, ctx.excerpt_chars), extra={"spamcop_id": report_id}))
        for match in SPAMVERTISED.finditer(text):
            events.append(ComplaintEvent(
                ip=None, time=parse_time(complaint.header("Date"))[0], category="spam",
                parser=self.name, url=match.group("url")[:2000],
                excerpt=excerpt(text, ctx.excerpt_chars), extra={"spamcop_id": report_id}))
        if not events and subject:
            ip = normalise_ip(subject.group("what"))
            events.append(ComplaintEvent(
                ip=ip, time=parse_time(complaint.header("Date"))[0], category="spam",
                parser=self.name, url="" if ip else subject.group("what")[:2000],
                excerpt=excerpt(text, ctx.excerpt_chars), time_uncertainty=24 * 3600,
                extra={"spamcop_id": report_id}))
        return events
