"""Verified opt-in records (clause mail.optin) and records requests with deadlines.

A record is *verified* when a confirmation event exists, happened after the
subscription, and came from the subscribed address (the confirming message's
From header, when given, must agree). A confirmation dated before the
subscription is *forged*; anything else is *unverified*, with the reason.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.parser import HeaderParser
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from aupguard.bulkmail.addresses import is_address, normalise_address
from aupguard.bulkmail.models import OptinRecord, OptinRequest
from aupguard.errors import InputError
from aupguard.incidents import Finding, report
from aupguard.store import audit, outbox
from aupguard.store.types import utcnow

CLAUSE = "mail.optin"
FIELDS = ("address", "subscribed_at", "source", "confirmed_at", "confirm_from", "confirm_headers")
MAX_ROWS = 2_000_000
MAX_ERRORS_SHOWN = 20
DATE_TOLERANCE = timedelta(hours=24)    # confirmed_at vs the confirming message's Date header


def _time(value: Any, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name} {str(value)[:40]!r} is not an ISO-8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _headers(value: Any, cap: int) -> tuple[dict[str, str], bool]:
    """Headers of the confirming message as a dict (raw text or JSON object); capped."""
    if value in (None, ""):
        return {}, False
    if isinstance(value, dict):
        items = [(str(k), str(v)) for k, v in value.items()]
    else:
        text = str(value)
        if text.lstrip().startswith("{"):
            try:
                items = [(str(k), str(v)) for k, v in json.loads(text).items()]
            except (ValueError, AttributeError):
                items = list(HeaderParser().parsestr(text, headersonly=True).items())
        else:
            items = list(HeaderParser().parsestr(text, headersonly=True).items())
    out: dict[str, str] = {}
    size, cut = 0, False
    for k, v in items:
        if size + len(k) + len(v) > cap:
            cut = True
            break
        out[k[:200]] = v
        size += len(k) + len(v)
    return out, cut


def classify(address: str, subscribed_at: datetime, confirmed_at: datetime | None,
             confirm_from: str, headers: dict[str, str]) -> tuple[str, str]:
    """(status, reason) of one record."""
    if confirmed_at is None:
        return "unverified", "no confirmation event"
    if confirmed_at < subscribed_at:
        return "forged", (f"confirmation {confirmed_at.isoformat()} is before the subscription "
                          f"{subscribed_at.isoformat()}")
    if confirmed_at == subscribed_at:
        return "unverified", "confirmation at the very instant of subscription (not a separate event)"
    sender = normalise_address(parseaddr(confirm_from)[1] or confirm_from) if confirm_from else ""
    if not sender:
        return "unverified", "confirmation sender unknown"
    if sender != address:
        return "unverified", f"confirmation came from {sender}, not from {address}"
    lower = {k.lower(): v for k, v in headers.items()}
    if "from" in lower:
        header_from = normalise_address(parseaddr(lower["from"])[1])
        if header_from != address:
            return "unverified", f"confirming message From: {header_from or '?'} is not {address}"
    if "date" in lower:
        try:
            date = parsedate_to_datetime(lower["date"])
        except (TypeError, ValueError):
            return "unverified", "confirming message has an unreadable Date header"
        if date.tzinfo is None:
            date = date.replace(tzinfo=timezone.utc)
        if abs(date - confirmed_at) > DATE_TOLERANCE:
            return "unverified", (f"confirming message is dated {date.isoformat()}, far from the "
                                  f"stated confirmation {confirmed_at.isoformat()}")
    return "verified", ""


@dataclass
class ImportResult:
    imported: int = 0
    verified: int = 0
    unverified: int = 0
    forged: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    batch: str = ""


def _rows_from_file(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InputError(f"{path} is not valid JSON: {exc}") from None
        if isinstance(data, dict) and isinstance(data.get("records"), list):
            data = data["records"]
        if not isinstance(data, list):
            raise InputError(f"{path}: expected a JSON list of records (or {{\"records\": [...]}})")
        return data
    reader = csv.DictReader(io.StringIO(text))
    missing = {"address", "subscribed_at"} - set(reader.fieldnames or [])
    if missing:
        raise InputError(f"{path}: CSV lacks column(s) {', '.join(sorted(missing))}; "
                         f"expected {', '.join(FIELDS)}")
    return list(reader)


def import_records(session: Session, client_id: str, records: list[dict[str, Any]], *,
                   batch: str = "", at: datetime | None = None, header_cap: int = 16384,
                   actor: str = "system") -> ImportResult:
    """Check and store a client's opt-in records (the API the web console calls too)."""
    if len(records) > MAX_ROWS:
        raise InputError(f"{len(records):,} records in one import; split the file (max {MAX_ROWS:,})")
    at = at or utcnow()
    batch = batch or at.strftime("%Y%m%dT%H%M%S")
    result = ImportResult(batch=batch)
    rows: list[dict[str, Any]] = []
    # Per record, by nature: each carries its own confirming-message headers to parse.
    for number, record in enumerate(records, start=1):
        try:
            if not isinstance(record, dict):
                raise ValueError("not an object")
            address = normalise_address(str(record.get("address") or ""))
            if not is_address(address):
                raise ValueError(f"address {str(record.get('address'))[:80]!r} is not an e-mail address")
            subscribed = _time(record.get("subscribed_at"), "subscribed_at")
            if subscribed is None:
                raise ValueError("subscribed_at is missing")
            confirmed = _time(record.get("confirmed_at"), "confirmed_at")
            headers, cut = _headers(record.get("confirm_headers"), header_cap)
            confirm_from = str(record.get("confirm_from") or "")[:400]
        except ValueError as exc:
            result.rejected += 1
            if len(result.errors) < MAX_ERRORS_SHOWN:
                result.errors.append(f"record {number}: {exc}")
            continue
        status, reason = classify(address, subscribed, confirmed, confirm_from, headers)
        if cut:
            reason = (reason + "; " if reason else "") + f"headers cut at {header_cap} bytes"
        setattr(result, status, getattr(result, status) + 1)
        rows.append({"client_id": client_id, "address": address, "subscribed_at": subscribed,
                     "source": str(record.get("source") or "")[:2000], "confirmed_at": confirmed,
                     "confirm_from": confirm_from, "confirm_headers": headers, "status": status,
                     "reason": reason, "imported_at": at, "batch": batch})
    if rows:
        session.execute(insert(OptinRecord), rows)
    result.imported = len(rows)
    audit.record(session, actor, "optin.import", "optin_batch", f"{client_id}:{batch}",
                 after={"imported": result.imported, "verified": result.verified,
                        "unverified": result.unverified, "forged": result.forged,
                        "rejected": result.rejected})
    return result


def import_file(session: Session, client_id: str, path: str | Path, **kwargs) -> ImportResult:
    return import_records(session, client_id, _rows_from_file(Path(path)), **kwargs)


def records_for(session: Session, client_id: str, address: str | None = None,
                status: str | None = None) -> list[OptinRecord]:
    query = select(OptinRecord).where(OptinRecord.client_id == client_id).order_by(
        OptinRecord.address, OptinRecord.subscribed_at, OptinRecord.id)
    if address:
        query = query.where(OptinRecord.address == normalise_address(address))
    if status:
        query = query.where(OptinRecord.status == status)
    return list(session.execute(query).scalars())


def _outcome(records: list[OptinRecord]) -> str:
    statuses = {r.status for r in records}
    for status in ("verified", "forged", "unverified"):
        if status in statuses:
            return status
    return "none"


def request_records(session: Session, client_id: str, address: str, *, days: int = 14,
                    at: datetime | None = None, ref: str = "", actor: str = "system") -> OptinRequest:
    """Ask a client for the opt-in records of `address` by a deadline (mail via the outbox)."""
    from aupguard.registry import get_client, notice_recipients

    if get_client(session, client_id) is None:
        raise InputError(f"client {client_id!r} does not exist (see `aupguard clients list`)")
    norm = normalise_address(address)
    if not is_address(norm):
        raise InputError(f"{address!r} is not an e-mail address")
    at = at or utcnow()
    deadline = at + timedelta(days=days)
    req = OptinRequest(client_id=client_id, address=norm, requested_at=at, deadline=deadline,
                       status="open", ref=ref)
    session.add(req)
    session.flush()
    recipients = notice_recipients(session, client_id)
    if recipients:
        message = outbox.enqueue(
            session, kind="optin-request", to=recipients, client_id=client_id, ref=f"optin_request:{req.id}",
            subject=f"Opt-in records requested for {norm} (reply by {deadline:%Y-%m-%d})",
            body=(f"Our Acceptable Use Policy (clause {CLAUSE}) requires verified opt-in for bulk "
                  f"mail and that records be produced on request.\n\nPlease provide the subscription "
                  f"and confirmation records for {norm} by {deadline.isoformat()}: the time and "
                  f"source of the subscription, the time of the confirmation and the headers of the "
                  f"confirming message.\n\nWithout an answer by the deadline the matter is escalated.\n"))
        req.outbox_id = message.id
    audit.record(session, actor, "optin.request", "optin_request", req.id,
                 after={"client": client_id, "address": norm, "deadline": deadline.isoformat(),
                        "ref": ref})
    return req


def answer_request(session: Session, request_id: int, *, note: str = "", at: datetime | None = None,
                   actor: str = "system") -> OptinRequest:
    """Record the client's answer; the outcome is what its stored records show for the address."""
    req = session.get(OptinRequest, request_id)
    if req is None:
        raise InputError(f"no opt-in records request #{request_id}")
    if req.status != "open":
        raise InputError(f"request #{request_id} is already {req.status}")
    at = at or utcnow()
    records = records_for(session, req.client_id, req.address)
    before = {"status": req.status}
    req.status, req.answered_at, req.answer = "answered", at, note[:5000]
    req.outcome = _outcome(records)
    if at > req.deadline:
        req.answer = (req.answer + " " if req.answer else "") + "[answered after the deadline]"
    if req.outcome != "verified":
        incident = report(session, Finding(
            source="complaint", rule="optin_request", clause_id=CLAUSE,
            key=f"optin_request:{req.id}", first_seen=req.requested_at, last_seen=at,
            client_id=req.client_id, victim=req.address,
            summary=f"opt-in records for {req.address}: {req.outcome}",
            metrics={"outcome": req.outcome, "records": len(records)},
            evidence=[{"kind": "optin_record", "id": r.id, "status": r.status, "reason": r.reason}
                      for r in records[:20]], peak=1.0), actor=actor)
        req.incident_id = incident.id
    audit.record(session, actor, "optin.answer", "optin_request", req.id, before=before,
                 after={"status": req.status, "outcome": req.outcome})
    return req


def escalate_overdue(session: Session, now: datetime | None = None,
                     actor: str = "system") -> list[OptinRequest]:
    """Open requests past their deadline: escalate (finding on mail.optin)."""
    now = now or utcnow()
    due = list(session.execute(select(OptinRequest).where(
        OptinRequest.status == "open", OptinRequest.deadline < now)).scalars())
    for req in due:
        incident = report(session, Finding(
            source="complaint", rule="optin_request", clause_id=CLAUSE, key=f"optin_request:{req.id}",
            first_seen=req.requested_at, last_seen=now, client_id=req.client_id, victim=req.address,
            summary=f"no opt-in records for {req.address} produced by the deadline "
                    f"{req.deadline.isoformat()}",
            metrics={"deadline": req.deadline.isoformat(), "outcome": "silence"},
            evidence=[{"kind": "optin_request", "id": req.id, "ref": req.ref}], peak=1.0), actor=actor)
        req.status, req.outcome, req.incident_id = "escalated", "none", incident.id
        audit.record(session, actor, "optin.escalate", "optin_request", req.id,
                     before={"status": "open"}, after={"status": "escalated"})
    return due


def list_requests(session: Session, client_id: str | None = None,
                  status: str | None = None) -> list[OptinRequest]:
    query = select(OptinRequest).order_by(OptinRequest.id.desc())
    if client_id:
        query = query.where(OptinRequest.client_id == client_id)
    if status:
        query = query.where(OptinRequest.status == status)
    return list(session.execute(query).scalars())


def _record_out(r: OptinRecord) -> dict[str, Any]:
    return {"address": r.address, "subscribed_at": r.subscribed_at.isoformat(), "source": r.source,
            "confirmed_at": r.confirmed_at.isoformat() if r.confirmed_at else "",
            "confirm_from": r.confirm_from, "confirm_headers": r.confirm_headers,
            "status": r.status, "reason": r.reason, "imported_at": r.imported_at.isoformat()}


def produce(session: Session, client_id: str, out: str | Path, address: str | None = None,
            actor: str = "system") -> int:
    """Write the records (of one address, or all) to JSON or CSV by the file suffix."""
    out = Path(out)
    rows = [_record_out(r) for r in records_for(session, client_id, address)]
    if out.suffix.lower() == ".csv":
        with out.open("w", newline="", encoding="utf-8") as fh:
            fieldnames = list(FIELDS) + ["status", "reason", "imported_at"]
            writer = csv.DictWriter(fh, fieldnames=fieldnames)
            writer.writeheader()
            for row in rows:
                writer.writerow({**row, "confirm_headers": json.dumps(row["confirm_headers"])})
    else:
        out.write_text(json.dumps({"client_id": client_id, "address": address,
                                   "produced_at": utcnow().isoformat(), "records": rows},
                                  indent=2), encoding="utf-8")
    audit.record(session, actor, "optin.produce", "optin_records", client_id,
                 after={"address": address, "records": len(rows), "file": str(out)})
    return len(rows)
