"""Hostile-input-safe MIME reading: a complaint as a flat list of decoded parts.

Python's ``email`` package does the parsing (compat32: it never raises on bad
headers). What we add: an iterative walk with a depth cap (deep nesting cannot
exhaust the stack), size caps per decoded part, charset fallbacks for wrong or
missing charsets, headers of enclosed message/rfc822 parts kept for the ARF
and JMRP parsers, and zip attachments expanded under a size and ratio cap.
Nothing here follows a link or touches the network.
"""

from __future__ import annotations

import email
import email.header
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.utils import getaddresses, parseaddr

TEXT_FALLBACK_CHARSETS = ("utf-8", "cp1252", "latin-1")


@dataclass
class Limits:
    max_part_bytes: int = 10 * 1024 * 1024
    max_unzipped_bytes: int = 50 * 1024 * 1024
    max_zip_ratio: int = 200
    max_depth: int = 20
    max_parts: int = 500

    @classmethod
    def from_settings(cls, intake) -> "Limits":
        return cls(max_part_bytes=intake.max_part_bytes,
                   max_unzipped_bytes=intake.max_unzipped_bytes,
                   max_zip_ratio=intake.max_zip_ratio, max_depth=intake.max_mime_depth)


@dataclass
class Part:
    """One leaf of the complaint (or a zip member, or a bare file)."""

    content_type: str
    data: bytes
    filename: str = ""
    charset: str | None = None
    depth: int = 0
    enclosed: bool = False            # inside a message/rfc822 (the reported mail)
    headers: Message | None = None    # for message/* parts: the enclosed header block
    _text: str | None = field(default=None, repr=False)

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = decode_text(self.data, self.charset)
        return self._text


@dataclass
class Complaint:
    """A received complaint, ready for the parsers."""

    raw: bytes
    message: Message | None
    parts: list[Part]
    errors: list[str] = field(default_factory=list)
    filename: str = ""
    cache: dict = field(default_factory=dict)   # parsers' per-complaint memo

    def header(self, name: str) -> str:
        if self.message is None:
            return ""
        return header_text(self.message.get(name))

    @property
    def sender(self) -> str:
        """The reporter's address: From, else Sender, else Return-Path."""
        for name in ("From", "Sender", "Return-Path"):
            addr = parseaddr(self.header(name))[1].strip().lower()
            if "@" in addr:
                return addr[:254]
        return ""

    @property
    def reply_to(self) -> str:
        addresses = getaddresses([self.header("Reply-To")])
        for _, addr in addresses:
            if "@" in addr:
                return addr.strip().lower()[:254]
        return self.sender

    @property
    def subject(self) -> str:
        return self.header("Subject")[:998]

    def body_text(self, *, include_enclosed: bool = False) -> str:
        """All text parts joined (the reporter's own words first)."""
        texts = [p.text for p in self.parts
                 if p.content_type.startswith("text/") and (include_enclosed or not p.enclosed)]
        return "\n".join(texts)

    def find(self, content_type: str) -> list[Part]:
        return [p for p in self.parts if p.content_type == content_type]


def header_text(value) -> str:
    """A header as text: RFC 2047 words decoded, bad encodings replaced, never raises."""
    if value is None:
        return ""
    try:
        pieces = email.header.decode_header(str(value))
        out = []
        for chunk, charset in pieces:
            if isinstance(chunk, bytes):
                out.append(decode_text(chunk, charset))
            else:
                out.append(chunk)
        text = "".join(out)
    except Exception:  # noqa: BLE001 - hostile headers may break the decoder any way
        text = str(value)
    return re.sub(r"\s+", " ", text).strip()


def decode_text(data: bytes, charset: str | None = None) -> str:
    """Bytes to text with the declared charset, else common fallbacks; never raises."""
    candidates = []
    if charset:
        candidates.append(charset.strip().strip('"').lower())
    candidates.extend(TEXT_FALLBACK_CHARSETS)
    for name in candidates:
        try:
            return data.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1", errors="replace")


def _payload_bytes(part: Message, limits: Limits, errors: list[str]) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:  # noqa: BLE001 - malformed transfer encodings
        errors.append(f"undecodable part {part.get_content_type()}: {exc.__class__.__name__}")
        raw = part.get_payload()
        data = raw.encode("latin-1", "replace") if isinstance(raw, str) else b""
    if data is None:
        data = b""
    if len(data) > limits.max_part_bytes:
        errors.append(f"part {part.get_content_type()} of {len(data)} bytes exceeds the "
                      f"{limits.max_part_bytes}-byte cap; kept raw, not parsed")
        return b""
    return data


def _headers_text(msg: Message) -> str:
    return "\n".join(f"{k}: {header_text(v)}" for k, v in msg.items())


def expand_zip(data: bytes, name: str, limits: Limits, errors: list[str],
               depth: int) -> list[Part]:
    """Members of a zip attachment, refusing bombs (total size and per-member ratio)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        errors.append(f"zip attachment {name!r} is unreadable: {exc}")
        return []
    parts: list[Part] = []
    total = 0
    for info in infos[:100]:
        if info.is_dir():
            continue
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_zip_ratio:
            errors.append(f"zip member {info.filename!r} has compression ratio {ratio:.0f} "
                          f"(> {limits.max_zip_ratio}): refused as a zip bomb")
            continue
        budget = min(limits.max_part_bytes, limits.max_unzipped_bytes - total)
        if budget <= 0:
            errors.append(f"zip {name!r} exceeds {limits.max_unzipped_bytes} bytes uncompressed; "
                          "remaining members refused")
            break
        try:
            with archive.open(info) as member:
                # Read at most budget+1 bytes: the header's declared size may lie.
                content = member.read(budget + 1)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError,
                ValueError) as exc:
            errors.append(f"zip member {info.filename!r} unreadable: {exc}")
            continue
        if len(content) > budget:
            errors.append(f"zip member {info.filename!r} exceeds the uncompressed cap; refused")
            continue
        total += len(content)
        lower = info.filename.lower()
        ctype = "text/csv" if lower.endswith(".csv") else (
            "application/json" if lower.endswith(".json") else "application/octet-stream")
        parts.append(Part(ctype, content, filename=info.filename.rsplit("/", 1)[-1],
                          depth=depth + 1))
    if len(infos) > 100:
        errors.append(f"zip {name!r} has {len(infos)} members; only the first 100 read")
    return parts


def _is_zip(part: Message, filename: str) -> bool:
    return (part.get_content_type() in ("application/zip", "application/x-zip-compressed")
            or filename.lower().endswith(".zip"))


def parse_complaint(raw: bytes, limits: Limits | None = None, filename: str = "") -> Complaint:
    """Read raw bytes: an RFC 5322 message, or a bare JSON/CSV report file."""
    limits = limits or Limits()
    lower = filename.lower()
    stripped = raw.lstrip()[:1]
    if lower.endswith(".json") or (stripped in (b"{", b"[") and _looks_json(raw)):
        return Complaint(raw, None, [Part("application/json", raw, filename=filename)],
                         filename=filename)
    if lower.endswith(".csv"):
        return Complaint(raw, None, [Part("text/csv", raw, filename=filename)],
                         filename=filename)
    if lower.endswith(".zip"):
        errors: list[str] = []
        return Complaint(raw, None, expand_zip(raw, filename, limits, errors, 0), errors,
                         filename=filename)
    errors = []
    try:
        msg = email.message_from_bytes(raw, policy=policy.compat32)
    except Exception as exc:  # noqa: BLE001 - the parser is lenient but not infallible
        return Complaint(raw, None, [Part("text/plain", raw[:limits.max_part_bytes])],
                         [f"unparseable message: {exc.__class__.__name__}"], filename)
    for defect in getattr(msg, "defects", [])[:5]:
        errors.append(f"MIME defect: {defect.__class__.__name__}")
    parts = walk(msg, limits, errors)
    return Complaint(raw, msg, parts, errors, filename)


def _looks_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return True


def walk(msg: Message, limits: Limits, errors: list[str]) -> list[Part]:
    """Flatten the MIME tree iteratively (no recursion), with depth and count caps."""
    parts: list[Part] = []
    stack: list[tuple[Message, int, bool]] = [(msg, 0, False)]
    seen = 0
    while stack:
        node, depth, enclosed = stack.pop()
        seen += 1
        if seen > limits.max_parts:
            errors.append(f"more than {limits.max_parts} MIME parts; the rest ignored")
            break
        if depth > limits.max_depth:
            errors.append(f"MIME nesting deeper than {limits.max_depth}; deeper parts ignored")
            continue
        ctype = node.get_content_type()
        payload = node.get_payload()
        if node.is_multipart() and isinstance(payload, list):
            if ctype.startswith("message/"):
                inner = [m for m in payload if isinstance(m, Message)]
                if not inner:
                    continue
                sub = inner[0]
                if ctype == "message/rfc822":
                    parts.append(Part(ctype, _headers_text(sub).encode("utf-8", "replace"),
                                      depth=depth, enclosed=True, headers=sub))
                    stack.append((sub, depth + 1, True))
                else:  # message/feedback-report, message/delivery-status: header fields
                    parts.append(Part(ctype, _headers_text(sub).encode("utf-8", "replace"),
                                      depth=depth, enclosed=enclosed, headers=sub))
                continue
            for child in reversed(payload):
                if isinstance(child, Message):
                    stack.append((child, depth + 1, enclosed))
            continue
        try:
            filename = header_text(node.get_filename() or "")[:255]
        except Exception:  # noqa: BLE001
            filename = ""
        data = _payload_bytes(node, limits, errors)
        if _is_zip(node, filename) and data:
            parts.extend(expand_zip(data, filename, limits, errors, depth))
            continue
        try:
            charset = node.get_content_charset()
        except Exception:  # noqa: BLE001
            charset = None
        parts.append(Part(ctype, data, filename=filename, charset=charset, depth=depth,
                          enclosed=enclosed))
    return parts
