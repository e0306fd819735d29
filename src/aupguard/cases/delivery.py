"""Outbox delivery: the only place aupguard sends mail.

Queued messages go through the configured SMTP relay (stdlib smtplib: the
relay does the real delivery, we only need one authenticated conversation).
Temporary failures (connection refused, 4xx) are retried with exponential
backoff; permanent ones (5xx for every recipient) or too many attempts mark
the message failed. Each outcome is audited.
"""

from __future__ import annotations

import re
import smtplib
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from aupguard.store import audit
from aupguard.store.outbox import OutboxMessage
from aupguard.store.types import utcnow

PASS_HEADERS = ("Cc", "Reply-To", "Message-ID", "In-Reply-To", "References", "X-Aupguard-Case",
                "X-Aupguard-Clause", "Auto-Submitted")
_HEADER_UNSAFE = re.compile(r"[\r\n\x00]")


@dataclass
class DeliveryReport:
    enabled: bool = True
    sent: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)
    message: str = ""


def build_message(settings, row: OutboxMessage) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.cases.from_address
    msg["To"] = ", ".join(row.to_addrs)
    msg["Subject"] = _HEADER_UNSAFE.sub(" ", row.subject)
    msg["Date"] = format_datetime(row.created_at)
    headers = row.headers or {}
    for name in PASS_HEADERS:
        if headers.get(name):
            msg[name] = _HEADER_UNSAFE.sub(" ", str(headers[name]))
    if "Message-ID" not in msg:
        msg["Message-ID"] = make_msgid(domain=settings.cases.reply_domain)
    msg["Auto-Submitted"] = msg["Auto-Submitted"] or "auto-generated"
    msg.set_content(row.body)
    return msg


def _recipients(row: OutboxMessage) -> list[str]:
    cc = [a.strip() for a in str((row.headers or {}).get("Cc", "")).split(",") if a.strip()]
    return list(dict.fromkeys(list(row.to_addrs) + cc))


def _connect(settings) -> smtplib.SMTP:
    cfg = settings.cases
    smtp = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.smtp_timeout_seconds)
    if cfg.smtp_starttls:
        smtp.starttls()
    if cfg.smtp_username:
        smtp.login(cfg.smtp_username, cfg.smtp_password)
    return smtp


def _defer(settings, row: OutboxMessage, now: datetime, error: str, report: DeliveryReport) -> None:
    cfg = settings.cases
    row.attempts += 1
    row.last_error = error[:2000]
    if row.attempts >= cfg.delivery_max_attempts:
        row.status = "failed"
        report.failed.append(row.id)
    else:
        row.next_attempt_at = now + timedelta(seconds=cfg.delivery_backoff_seconds
                                              * 2 ** (row.attempts - 1))
        report.deferred.append(row.id)
    report.errors[row.id] = error


def deliver_outbox(session: Session, settings, now: datetime | None = None,
                   limit: int = 500) -> DeliveryReport:
    """Send every queued message that is due; returns what was sent, deferred, failed."""
    if not settings.cases.smtp_enabled:
        return DeliveryReport(enabled=False, message=(
            "outbox delivery is off: set [cases] smtp_enabled = true and smtp_host/smtp_port "
            "to your relay"))
    now = now or utcnow()
    due = session.execute(
        select(OutboxMessage).where(OutboxMessage.status == "queued",
                                    or_(OutboxMessage.next_attempt_at.is_(None),
                                        OutboxMessage.next_attempt_at <= now))
        .order_by(OutboxMessage.id).limit(limit)).scalars().all()
    report = DeliveryReport()
    if not due:
        return report
    try:
        smtp = _connect(settings)
    except (OSError, smtplib.SMTPException, socket.timeout) as exc:
        for row in due:
            _defer(settings, row, now, f"relay {settings.cases.smtp_host}:"
                   f"{settings.cases.smtp_port} unreachable: {exc}", report)
        report.message = "relay unreachable; messages deferred"
        audit.record(session, "system:outbox", "outbox.deferred", "outbox", "relay",
                     after={"ids": report.deferred, "failed": report.failed}, note=str(exc)[:500])
        return report
    try:
        for row in due:
            try:
                refused = smtp.send_message(build_message(settings, row),
                                            from_addr=settings.cases.from_address,
                                            to_addrs=_recipients(row))
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _ in exc.recipients.values()]
                if all(500 <= c < 600 for c in codes):
                    row.attempts += 1
                    row.status, row.last_error = "failed", f"all recipients refused: {exc.recipients}"
                    report.failed.append(row.id)
                    report.errors[row.id] = row.last_error
                else:
                    _defer(settings, row, now, f"recipients refused: {exc.recipients}", report)
                continue
            except smtplib.SMTPResponseException as exc:
                if 500 <= exc.smtp_code < 600:
                    row.attempts += 1
                    row.status, row.last_error = "failed", f"{exc.smtp_code} {exc.smtp_error!r}"
                    report.failed.append(row.id)
                    report.errors[row.id] = row.last_error
                else:
                    _defer(settings, row, now, f"{exc.smtp_code} {exc.smtp_error!r}", report)
                continue
            except (OSError, smtplib.SMTPException) as exc:
                _defer(settings, row, now, str(exc), report)
                continue
            row.attempts += 1
            row.status, row.sent_at, row.last_error = "sent", now, (
                f"partly refused: {refused}" if refused else "")
            report.sent.append(row.id)
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            pass
    for status, ids in (("sent", report.sent), ("deferred", report.deferred),
                        ("failed", report.failed)):
        if ids:
            audit.record(session, "system:outbox", f"outbox.{status}", "outbox",
                         ",".join(map(str, ids))[:200], after={"ids": ids})
    return report
