"""What a parser yields: one complaint event, and the category -> AUP clause map."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Canonical complaint categories and the AUP clause each one breaks. Parsers map
# their format's vocabulary (X-ARF "Report-Type", Shadowserver report types,
# XARF v4 category/type, ARF Feedback-Type) onto these names first.
CATEGORY_CLAUSE: dict[str, str] = {
    "spam": "mail.spam",                  # ARF abuse/FBL, SpamCop, XARF messaging
    "auth-failure": "security.forgery",   # RFC 6591 DMARC/SPF failure: forged mail headers
    "forgery": "security.forgery",
    "login-attack": "security.cracking",  # brute force, password guessing
    "copyright": "lawful.ip",
    "csam": "content.csam",
    "ddos": "security.flood",
    "amplifier": "security.flood",        # open resolvers/NTP etc. used for reflection
    "botnet": "mail.malware",
    "malware": "mail.malware",
    "scan": "security.scan",
    "phishing": "security.phishing",
    "fraud": "security.phishing",         # the AUP names phishing as its fraud example
    "pharming": "security.pharming",
    "exploit": "lawful.exploit",          # web-form attacks, SQL injection
    "harassment": "lawful.abusive",
    "privacy": "lawful.privacy",
    "blocklist": "security.blacklisting",
    "vulnerable": "security.blacklisting",
    "open-relay": "mail.relay",
    "unknown": "general.complaints",      # nothing said what happened: ask the reporter
}

CATEGORIES = tuple(CATEGORY_CLAUSE)


def clause_for(category: str) -> str:
    return CATEGORY_CLAUSE.get(category, "general.complaints")


def normalise_ip(text: str | None) -> str | None:
    """A valid address as canonical text (IPv4-mapped IPv6 shown as IPv4), else None."""
    if not text:
        return None
    candidate = text.strip().strip("[]")
    try:
        addr = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


def normalise_port(value: Any) -> int | None:
    try:
        port = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return port if 0 < port < 65536 else None


@dataclass
class ComplaintEvent:
    """One reported occurrence: who (address, port) did what (category) and when."""

    ip: str | None
    time: datetime | None
    category: str
    parser: str
    port: int | None = None
    reporter: str = ""
    excerpt: str = ""
    # Seconds the time may be off by: 0 for a stamped event, a day for a report
    # dated only by its file name, hours for a free-text time without a zone.
    time_uncertainty: int = 0
    url: str = ""
    domain: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def clause_id(self) -> str:
        return clause_for(self.category)

    def key(self) -> tuple:
        return (self.ip, self.port, self.category,
                self.time.isoformat() if self.time else None, self.url)
