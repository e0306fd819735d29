"""Free text, the fallback: addresses, URLs, domains and zoned timestamps in prose.

Reporters write "hxxp://evil[.]example(dot)com" so nobody clicks; we undo that
to read the indicator, and never fetch anything.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime

from aupguard.intake.events import ComplaintEvent
from aupguard.intake.mime import Complaint
from aupguard.intake.parsers.base import ParseContext, excerpt, register
from aupguard.intake.timeparse import parse_time

_DEOBFUSCATE = [
    (re.compile(r"\bhxxp(s?)\b", re.I), r"http\1"),
    (re.compile(r"\bh\*\*p(s?)\b", re.I), r"http\1"),
    (re.compile(r"\s*[\[\(\{]\s*(?:\.|dot)\s*[\]\)\}]\s*", re.I), "."),
    (re.compile(r"\s*[\[\(\{]\s*(?::|colon)\s*[\]\)\}]\s*", re.I), ":"),
    (re.compile(r"\s*[\[\(\{]\s*(?:@|at)\s*[\]\)\}]\s*", re.I), "@"),
]
IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}"
                  r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\.?\d)")
IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}:){1,7}(?::|(?::[0-9A-Fa-f]{1,4}){1,7}|"
                  r"[0-9A-Fa-f]{1,4})(?![\w:])")
URL = re.compile(r"\bhttps?://[^\s<>\"')\]]{1,2000}", re.I)
DOMAIN = re.compile(r"\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,24})\b", re.I)
_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
TIMES = [
    re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
               r"(?:\s*(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})\b)?"),
    re.compile(rf"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),?\s+)?\d{{1,2}}\s+(?:{_MONTHS})\s+\d{{4}}"
               r"\s+\d{1,2}:\d{2}(?::\d{2})?(?:\s*(?:[+-]\d{4}|UTC|UT|GMT|Z|[ECMP][SD]T)\b)?"),
]
APACHE_TIME = re.compile(rf"(\d{{2}})/({_MONTHS})/(\d{{4}}):(\d{{2}}:\d{{2}}:\d{{2}}) ([+-]\d{{4}})")

# First match wins: the most serious categories are looked for first.
KEYWORDS: list[tuple[str, re.Pattern]] = [
    ("csam", re.compile(r"child (?:sexual )?abuse|csam|child porn", re.I)),
    ("copyright", re.compile(r"copyright|infring|dmca|piracy|pirated", re.I)),
    ("phishing", re.compile(r"phish", re.I)),
    ("ddos", re.compile(r"\bddos\b|denial[- ]of[- ]service|\bflood", re.I)),
    ("login-attack", re.compile(r"brute[- ]?force|login attempt|failed login|password guess"
                                r"|ssh attack|login attack", re.I)),
    ("scan", re.compile(r"port ?scan|scanning|\bscan\b|probing", re.I)),
    ("botnet", re.compile(r"botnet|\bc2\b|command[- ]and[- ]control|sinkhole", re.I)),
    ("malware", re.compile(r"malware|virus|trojan|worm|ransomware|malicious", re.I)),
    ("spam", re.compile(r"\bspam|unsolicited|bulk mail", re.I)),
    ("harassment", re.compile(r"harass|threat", re.I)),
    ("exploit", re.compile(r"sql injection|exploit", re.I)),
]


def deobfuscate(text: str) -> str:
    for pattern, repl in _DEOBFUSCATE:
        text = pattern.sub(repl, text)
    return text


def find_ips(text: str, limit: int = 50) -> list[str]:
    found: list[str] = []
    for match in IPV4.finditer(text):
        if match.group(0) not in found:
            found.append(match.group(0))
    for match in IPV6.finditer(text):
        try:
            addr = ipaddress.IPv6Address(match.group(0))
        except ValueError:
            continue
        if str(addr) not in found:
            found.append(str(addr))
        if len(found) >= limit:
            break
    return found[:limit]


def find_times(text: str, limit: int = 20) -> list[tuple[datetime, bool]]:
    """(UTC time, had a zone) for each timestamp written in the text, in order."""
    hits: list[tuple[int, datetime, bool]] = []
    for pattern in TIMES:
        for match in pattern.finditer(text):
            parsed, zoned = parse_time(match.group(0))
            if parsed:
                hits.append((match.start(), parsed, zoned))
    for match in APACHE_TIME.finditer(text):
        day, mon, year, clock, zone = match.groups()
        parsed, zoned = parse_time(f"{day} {mon} {year} {clock} {zone}")
        if parsed:
            hits.append((match.start(), parsed, zoned))
    hits.sort(key=lambda h: h[0])
    return [(t, z) for _, t, z in hits[:limit]]


def categorise(text: str) -> str:
    for category, pattern in KEYWORDS:
        if pattern.search(text):
            return category
    return "unknown"


def best_time(times: list[tuple[datetime, bool]]) -> tuple[datetime | None, int]:
    """The first zoned time, else the first naive one with 14 h of uncertainty."""
    for when, zoned in times:
        if zoned:
            return when, 0
    if times:
        return times[0][0], 14 * 3600
    return None, 0


@register
class FreeTextParser:
    name = "freetext"

    def detect(self, complaint: Complaint) -> int:
        return 1

    def parse(self, complaint: Complaint, ctx: ParseContext) -> list[ComplaintEvent]:
        own = complaint.body_text()
        text = deobfuscate(f"{complaint.subject}\n{own}")
        ips = find_ips(text)
        when, uncertainty = best_time(find_times(text))
        category = categorise(text)
        urls = [u.rstrip(".,;") for u in URL.findall(text)][:20]
        evidence = excerpt(text, ctx.excerpt_chars)
        if not ips:
            domains = [d for d in DOMAIN.findall(text) if not IPV4.fullmatch(d)]
            if not (urls or domains):
                return []
            return [ComplaintEvent(ip=None, time=when, category=category, parser=self.name,
                                   excerpt=evidence, time_uncertainty=uncertainty,
                                   url=urls[0][:2000] if urls else "",
                                   domain=(domains[0] if domains else "")[:255])]
        return [ComplaintEvent(ip=ip, time=when, category=category, parser=self.name,
                               excerpt=evidence, time_uncertainty=uncertainty,
                               url=urls[0][:2000] if urls else "") for ip in ips]
