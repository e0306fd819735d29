"""Notice rendering: Jinja2 templates per clause, evidence excerpts, redaction.

Templates live in ``cases/templates/<clause_id>.txt.j2`` (falling back to
``default.txt.j2``); a configured ``template_dir`` is searched first so an
operator edits a copy instead of the package. Mail is plain text, so nothing
is HTML-escaped; hostile complaint text is instead capped, stripped of control
characters and quoted line by line (``> ``), so it can never pose as our words.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from aupguard.cases import evidence as evidence_store

TEMPLATE_DIR = Path(__file__).parent / "templates"
MAX_INCIDENTS_QUOTED = 5
MAX_SAMPLES_PER_INCIDENT = 10

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,253}\.[A-Za-z]{2,24}")
# Only unmistakable phone numbers: international (+CC ...) or labelled ones. Bare digit
# runs are left alone: in complaints they are mostly dates, ports, counts and addresses.
_PHONE = re.compile(r"\+\d[\d ()\-.]{6,}\d")
_LABELLED_PHONE = re.compile(r"\b(?P<label>phone|tel|telephone|fax|mobile)(?P<sep>[:.]?\s*)"
                             r"[\d()+][\d ()\-+.]{6,}\d", re.IGNORECASE)
_PERSONAL_HEADERS = re.compile(
    r"^(?P<name>(from|reply-to|sender|return-path|reported-by|reporter|contact|name|phone|"
    r"tel|telephone|address|signed|x-arf-reporter|reporter-name|reporter-email|to|cc|"
    r"original-rcpt-to|removal-recipient|delivered-to|x-original-to)\s*:)(?P<value>.*)$",
    re.IGNORECASE | re.MULTILINE)
# C0/C1 controls and Unicode line separators: a quoted line must not break into an unquoted one.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


def redact(text: str, keep: tuple[str, ...] = ()) -> str:
    """Remove the complainant's personal data: named header values, e-mail addresses, phones.

    `keep` lists strings (the offender's address) that stay readable: the client
    must recognise its own host.
    """
    text = _PERSONAL_HEADERS.sub(lambda m: m.group("name") + " [redacted]", text)
    text = _EMAIL.sub(lambda m: m.group(0) if m.group(0) in keep else "[redacted e-mail]", text)

    text = _LABELLED_PHONE.sub(lambda m: m.group("label") + m.group("sep") + "[redacted phone]",
                               text)
    return _PHONE.sub("[redacted phone]", text)


def sanitise(text: str, limit: int) -> str:
    """Hostile text made safe to quote: no control characters, capped, marked when cut."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    if len(text) > limit:
        text = text[:limit] + f"\n[... cut: {len(text) - limit} more characters]"
    return text


def quote(text: str) -> str:
    return "\n".join("> " + line for line in text.split("\n"))


_QUOTED_HEADERS = ("Date", "From", "To", "Subject", "Message-ID", "Received")


def readable(raw: bytes) -> str:
    """The readable parts of a complaint: a mail's text parts, feedback report and the
    reported message's headers (not MIME boundaries and transfer encodings); other
    content as decoded text."""
    head = raw[:4096]
    if not (b"\nContent-Type:" in head or b"\nSubject:" in head or head.startswith(b"From")):
        return raw.decode("utf-8", "replace")
    import email
    import email.policy

    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        out: list[str] = []
        for part in message.walk():
            ctype = part.get_content_type()
            if ctype in ("text/plain", "message/feedback-report", "text/rfc822-headers"):
                payload = part.get_payload(decode=True) or b""
                charset = part.get_content_charset() or "utf-8"
                try:
                    out.append(payload.decode(charset, "replace"))
                except LookupError:
                    out.append(payload.decode("utf-8", "replace"))
            elif ctype == "message/rfc822":
                inner = part.get_payload()
                inner = inner[0] if isinstance(inner, list) and inner else inner
                if hasattr(inner, "items"):
                    out.append("\n".join(f"{k}: {v}" for k, v in inner.items()
                                         if k in _QUOTED_HEADERS))
            if sum(len(x) for x in out) > 200_000:
                break
        return "\n\n".join(x.strip() for x in out if x.strip()) or raw.decode("utf-8", "replace")
    except Exception:  # hostile MIME: fall back to the raw text, never fail the notice
        return raw.decode("utf-8", "replace")


def _sample_line(sample: dict[str, Any]) -> str:
    parts = []
    for key, value in sample.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, default=str)
        parts.append(f"{key}={value}")
    return " ".join(parts)[:500]


@dataclass
class Excerpt:
    incident_id: int
    rule: str
    source: str
    first_seen: datetime
    last_seen: datetime
    offender: str
    victim: str
    summary: str
    text: str


def excerpts(settings, incidents: list, *, redact_personal: bool) -> list[Excerpt]:
    """Evidence excerpts for a notice: complaint text (redacted) or sample flows."""
    limit = settings.cases.excerpt_chars
    out = []
    for inc in incidents[:MAX_INCIDENTS_QUOTED]:
        chunks: list[str] = []
        samples = []
        for item in inc.evidence or []:
            if not isinstance(item, dict):
                continue
            sha = evidence_store.ref_of(item)
            if sha and len(chunks) < 2:
                try:
                    raw = evidence_store.get(settings, sha)
                except Exception:  # deleted by retention or corrupt: say so, never fail the notice
                    fallback = item.get("excerpt")
                    chunks.append(str(fallback) if isinstance(fallback, str) and fallback
                                  else f"[evidence {sha} no longer available]")
                    continue
                chunks.append(readable(raw))
            elif not sha and len(samples) < MAX_SAMPLES_PER_INCIDENT:
                samples.append(_sample_line(item))
        if samples:
            chunks.append("\n".join(samples))
        text = sanitise("\n\n".join(chunks), limit)
        if redact_personal:
            text = redact(text, keep=(inc.offender,))
        out.append(Excerpt(inc.id, inc.rule, inc.source, inc.first_seen, inc.last_seen,
                           sanitise(inc.offender, 200), sanitise(inc.victim, 200),
                           sanitise(inc.summary, 1000), quote(text) if text else ""))
    return out


@lru_cache(maxsize=8)
def _environment(template_dir: str) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if template_dir:
        loaders.append(jinja2.FileSystemLoader(template_dir))
    loaders.append(jinja2.FileSystemLoader(str(TEMPLATE_DIR)))
    env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), autoescape=False,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["utc"] = lambda d: d.strftime("%Y-%m-%d %H:%M UTC") if d else "-"
    env.filters["wrap"] = lambda s, width=76: "\n".join(
        __import__("textwrap").fill(p, width) for p in str(s).split("\n"))
    return env


def template_for(settings, clause_id: str) -> jinja2.Template:
    env = _environment(settings.cases.template_dir)
    return env.select_template([f"{clause_id}.txt.j2", "default.txt.j2"])


@dataclass
class Rendered:
    subject: str
    body: str


def render(settings, clause_id: str, context: dict[str, Any]) -> Rendered:
    """Render the clause's template; the first line 'Subject: ...' becomes the subject."""
    text = template_for(settings, clause_id).render(**context)
    first, _, rest = text.partition("\n")
    if first.lower().startswith("subject:"):
        subject = first.split(":", 1)[1].strip()
        body = rest.lstrip("\n")
    else:
        subject = f"[case #{context['case']['id']}] Acceptable use policy: {clause_id}"
        body = text
    return Rendered(subject=re.sub(r"[\r\n]+", " ", subject)[:300], body=body)


@dataclass
class NoticePreview:
    to: list[str]
    cc: list[str]
    subject: str
    body: str
    reply_to: str = ""
    step: str = "notice"
    headers: dict[str, str] = field(default_factory=dict)
