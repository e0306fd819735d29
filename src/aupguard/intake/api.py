"""The read/resolve API the CLI and the web console use."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from aupguard.errors import InputError
from aupguard.intake.models import EVENT_STATUSES, EventRow, MessageRow
from aupguard.store import audit


def list_messages(session: Session, *, status: str | None = None, reporter: str | None = None,
                  since: datetime | None = None, limit: int = 200) -> list[MessageRow]:
    query = select(MessageRow).order_by(MessageRow.id.desc()).limit(limit)
    if status:
        query = query.where(MessageRow.status == status)
    if reporter:
        query = query.where(MessageRow.reporter == reporter.lower())
    if since:
        query = query.where(MessageRow.received_at >= since)
    return list(session.execute(query).scalars())


def get_message(session: Session, message_id: int) -> MessageRow | None:
    return session.get(MessageRow, message_id)


def list_events(session: Session, *, status: str | None = None, client_id: str | None = None,
                message_id: int | None = None, limit: int = 1000) -> list[EventRow]:
    if status and status not in EVENT_STATUSES:
        raise InputError(f"unknown event status {status!r}; use one of {', '.join(EVENT_STATUSES)}")
    query = select(EventRow).order_by(EventRow.id.desc()).limit(limit)
    if status:
        query = query.where(EventRow.status == status)
    if client_id:
        query = query.where(EventRow.client_id == client_id)
    if message_id is not None:
        query = query.where(EventRow.message_id == message_id)
    return list(session.execute(query).scalars())


def review_queue(session: Session, limit: int = 1000) -> list[EventRow]:
    """Events waiting for a person: no client, several candidates, vague time, low trust."""
    return list(session.execute(select(EventRow).where(EventRow.status == "review")
                                .order_by(EventRow.id).limit(limit)).scalars())


def _event(session: Session, event_id: int) -> EventRow:
    row = session.get(EventRow, event_id)
    if row is None:
        raise InputError(f"no intake event {event_id} (see `aupguard intake review`)")
    return row


def assign_event(session: Session, event_id: int, client_id: str, actor: str) -> EventRow:
    """Attribute a review-queue event by hand; it then opens (or grows) its incident."""
    from aupguard.incidents import report
    from aupguard.intake.pipeline import finding_for

    row = _event(session, event_id)
    if row.status not in ("review", "dismissed"):
        raise InputError(f"event {event_id} is {row.status}; only review or dismissed events "
                         "can be assigned")
    try:
        from aupguard.registry import get_client

        if get_client(session, client_id) is None:
            raise InputError(f"no client {client_id!r} (see `aupguard clients list`)")
    except ImportError:
        pass
    if row.time is None:
        raise InputError(f"event {event_id} has no time; it cannot become an incident "
                         "(ask the reporter, then dismiss it)")
    before = {"status": row.status, "client_id": row.client_id}
    row.status, row.client_id, row.review_reason = "attributed", client_id, ""
    message = session.get(MessageRow, row.message_id)
    reference = message.reference if message else ""
    raw_ref = message.raw_ref if message else ""
    finding = finding_for(session, row, reference, raw_ref)
    incident = report(session, finding, actor=actor)
    row.incident_id = incident.id
    audit.record(session, actor, "intake.assign", "intake_event", row.id, before=before,
                 after={"status": row.status, "client_id": client_id,
                        "incident_id": incident.id})
    return row


def dismiss_event(session: Session, event_id: int, actor: str, note: str = "") -> EventRow:
    row = _event(session, event_id)
    if row.status == "dismissed":
        return row
    before = {"status": row.status}
    row.status = "dismissed"
    audit.record(session, actor, "intake.dismiss", "intake_event", row.id, before=before,
                 after={"status": "dismissed"}, note=note[:500])
    return row
