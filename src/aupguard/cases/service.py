"""The cases service: the abuse desk's work as functions.

Every function takes a SQLAlchemy session first and works inside the caller's
transaction; every change is written to the case timeline and to the
hash-chained audit log. Read functions return pydantic models, never ORM rows,
so the web layer serialises them as they are.

    from aupguard.cases import service as cases
    cases.ingest_incidents(session, settings)
"""

from __future__ import annotations

import email
import email.policy
import html
import json
import re
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aupguard.cases import directory, evidence, keys, notices
from aupguard.cases.delivery import DeliveryReport, deliver_outbox
from aupguard.cases.export import export_case, verify_export
from aupguard.cases.models import (
    OPEN_STATUSES,
    PRIORITIES,
    STATUSES,
    CaseEventRow,
    CaseEvidenceRow,
    CaseRow,
    EnforcementOrderRow,
    LegalHoldRow,
    MandatoryReportRow,
    StrikeRow,
)
from aupguard.cases.notices import NoticePreview
from aupguard.errors import AupguardError, InputError
from aupguard.incidents.model import IncidentRow
from aupguard.store import audit
from aupguard.store.outbox import OutboxMessage, enqueue
from aupguard.store.types import utcnow

__all__ = [
    "Case", "TimelineEntry", "Step", "StrikeSummary", "ClientView", "EnforcementOrder",
    "MandatoryReport", "NoticePreview", "DeliveryReport", "STATUSES", "TRANSITIONS",
    "ingest_incidents", "list_cases", "get_case", "timeline", "add_note", "set_status", "assign",
    "set_priority", "preview_notice", "send_notice", "escalate", "run_deadlines",
    "record_mandatory_report", "merge", "split", "client_token", "client_view", "client_reply",
    "strikes", "withdraw_strike", "deliver_outbox", "thread_reply", "export_case",
    "verify_export", "is_restricted", "is_case_reply", "orders", "lift_order", "mandatory_reports",
    "case_evidence", "evidence", "ladder_for", "set_due", "periodic", "PeriodicReport",
]

# Which statuses a person may move a case to from each status. Escalation moves
# along the ladder by itself (escalate / run_deadlines), recorded the same way.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("notified", "awaiting_client", "escalated", "resolved", "closed"),
    "notified": ("awaiting_client", "escalated", "resolved", "closed"),
    "awaiting_client": ("notified", "escalated", "resolved", "closed"),
    "escalated": ("notified", "awaiting_client", "restricted", "suspended", "terminated",
                  "resolved", "closed"),
    "restricted": ("escalated", "suspended", "terminated", "resolved", "closed"),
    "suspended": ("restricted", "terminated", "resolved", "closed"),
    "terminated": ("closed",),
    "resolved": ("open", "closed"),
    "closed": ("open",),
}
NEEDS_REPORT = ("resolved", "closed")
STEP_STATUS = {"notice": "notified", "warning": "escalated", "restriction": "restricted",
               "suspension": "suspended", "termination": "terminated"}
STEP_TITLE = {"notice": "Notice", "warning": "Warning", "restriction": "Service restricted",
              "suspension": "Service suspended", "termination": "Service terminated"}
PRIORITY_BY_CLAUSE = {"content.csam": "urgent", "security.flood": "high",
                      "security.phishing": "high", "mail.malware": "high"}
MAX_REPLY_CHARS = 20_000
RETRY_FAILED_STEP_HOURS = 24
MAX_NOTE_CHARS = 20_000
SELF_HELP_SALT = "aupguard-case-self-help"


# --- read models ------------------------------------------------------------------------

class Case(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    client_id: str
    clause_id: str
    status: str
    owner: str
    priority: str
    title: str
    restricted: bool
    opened_at: datetime
    updated_at: datetime
    first_seen: datetime
    last_seen: datetime
    due_at: datetime | None
    ladder_step: int
    last_notice_at: datetime | None
    last_reply_at: datetime | None
    closed_at: datetime | None
    merged_into: int | None
    incident_ids: list[int] = Field(default_factory=list)
    ladder: list[str] = Field(default_factory=list)
    current_step: str | None = None
    next_step: str | None = None
    has_mandatory_report: bool = False


class TimelineEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    kind: str
    text: str
    data: dict[str, Any] = Field(default_factory=dict)


class EnforcementOrder(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    case_id: int
    client_id: str
    kind: str
    action: str
    params: dict[str, Any]
    status: str
    issued_at: datetime
    issued_by: str
    lifted_at: datetime | None


class MandatoryReport(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    case_id: int
    authority: str
    report_id: str
    reported_at: datetime
    recorded_by: str
    recorded_at: datetime


class Step(BaseModel):
    case_id: int
    index: int
    name: str
    status: str
    actor: str
    at: datetime
    due_at: datetime | None
    next_step: str | None
    order_id: int | None = None
    message_id: int | None = None


class StrikeEntry(BaseModel):
    id: int
    case_id: int
    incident_id: int | None
    at: datetime
    reference: str
    withdrawn: bool


class StrikeSummary(BaseModel):
    client_id: str
    active: int
    window_days: int
    warning_threshold: int
    termination_threshold: int
    level: str  # none | warning | terminate
    recommendation: str
    entries: list[StrikeEntry] = Field(default_factory=list)


class EvidenceItem(BaseModel):
    """What the desk may see of a piece of evidence. Restricted cases: hashes and metadata only."""

    sha256: str
    kind: str
    size: int
    incident_id: int | None
    added_at: datetime
    added_by: str
    present: bool
    held: bool
    held_until: datetime | None


class ClientView(BaseModel):
    case_id: int
    client_name: str
    clause_id: str
    clause_text: str
    status: str
    opened_at: datetime
    due_at: datetime | None
    what_happened: list[dict[str, Any]]
    messages: list[TimelineEntry]
    link_expires: datetime


# --- helpers ----------------------------------------------------------------------------

def _settings_default(settings):
    if settings is not None:
        return settings
    from aupguard.config import load_settings

    return load_settings()


def _row(session: Session, case_id: int, lock: bool = True) -> CaseRow:
    """The case row; locked (SELECT ... FOR UPDATE on PostgreSQL) for changes, so a person
    escalating by hand and the deadline runner never take the same step twice."""
    row = session.get(CaseRow, int(case_id), with_for_update=lock or None)
    if row is None:
        raise InputError(f"no case #{case_id}; list cases with `aupguard cases list`")
    return row


def _event(session: Session, row: CaseRow, actor: str, kind: str, text: str = "",
           data: dict[str, Any] | None = None, before: Any = None, after: Any = None,
           at: datetime | None = None) -> CaseEventRow:
    at = at or utcnow()
    data = audit._canonical(data or {})
    event = CaseEventRow(case_id=row.id, at=at, actor=actor, kind=kind, text=text, data=data)
    session.add(event)
    row.updated_at = at
    session.flush()
    audit.record(session, actor, f"case.{kind}", "case", row.id, before=before,
                 after=after if after is not None else (data or None), note=text[:500], at=at)
    return event


def ladder_for(settings, clause_id: str) -> list[str]:
    return list(settings.cases.ladders.get(clause_id) or settings.cases.default_ladder)


def is_restricted(case: Case | CaseRow) -> bool:
    """True for cases only the restricted (legal) role may see (CSAM and other configured clauses)."""
    return bool(case.restricted)


def _has_report(session: Session, case_id: int) -> bool:
    return session.execute(select(func.count()).select_from(MandatoryReportRow)
                           .where(MandatoryReportRow.case_id == case_id)).scalar_one() > 0


def _to_model(session: Session, row: CaseRow, settings=None) -> Case:
    settings = _settings_default(settings)
    incident_ids = list(session.execute(
        select(IncidentRow.id).where(IncidentRow.case_id == row.id).order_by(IncidentRow.id)
    ).scalars())
    ladder = ladder_for(settings, row.clause_id)
    current = ladder[row.ladder_step] if 0 <= row.ladder_step < len(ladder) else None
    nxt = ladder[row.ladder_step + 1] if row.ladder_step + 1 < len(ladder) else None
    return Case.model_validate(row).model_copy(update={
        "incident_ids": incident_ids, "ladder": ladder, "current_step": current,
        "next_step": nxt, "has_mandatory_report": _has_report(session, row.id)})


def _incidents(session: Session, case_id: int) -> list[IncidentRow]:
    return list(session.execute(select(IncidentRow).where(IncidentRow.case_id == case_id)
                                .order_by(IncidentRow.first_seen, IncidentRow.id)).scalars())


def _recompute_span(session: Session, row: CaseRow) -> None:
    span = session.execute(select(func.min(IncidentRow.first_seen), func.max(IncidentRow.last_seen))
                           .where(IncidentRow.case_id == row.id)).one()
    if span[0] is not None:
        row.first_seen, row.last_seen = span[0], span[1]


# --- grouping ---------------------------------------------------------------------------

def _open_case(session: Session, settings, inc: IncidentRow, now: datetime,
               actor: str) -> CaseRow:
    cfg = settings.cases
    restricted = inc.clause_id in cfg.restricted_clauses
    title = f"{inc.clause_id}: {inc.summary or inc.rule}"[:500]
    if restricted:
        title = f"{inc.clause_id}: restricted case"  # the summary may describe the material
    row = CaseRow(client_id=inc.client_id, clause_id=inc.clause_id, status="open",
                  priority=PRIORITY_BY_CLAUSE.get(inc.clause_id, "normal"), title=title,
                  restricted=restricted, opened_at=now, updated_at=now,
                  first_seen=inc.first_seen, last_seen=inc.last_seen,
                  due_at=now + timedelta(hours=cfg.triage_hours), ladder_step=-1)
    session.add(row)
    session.flush()
    _event(session, row, actor, "open", f"case opened for {inc.client_id} under {inc.clause_id}",
           after={"client": row.client_id, "clause": row.clause_id, "restricted": restricted,
                  "priority": row.priority, "due_at": row.due_at})
    return row


def _link_evidence(session: Session, settings, row: CaseRow, sha: str, kind: str, size: int,
                   incident_id: int | None, actor: str) -> None:
    exists = session.execute(select(CaseEvidenceRow.id).where(
        CaseEvidenceRow.case_id == row.id, CaseEvidenceRow.sha256 == sha)).first()
    if exists:
        return
    session.add(CaseEvidenceRow(case_id=row.id, sha256=sha, kind=kind[:50], incident_id=incident_id,
                                size=size, added_at=utcnow(), added_by=actor))
    session.flush()
    if row.restricted:
        evidence.place_hold(session, sha, until=None, case_id=row.id, actor=actor,
                            reason="restricted case: preserved until the mandatory report + hold")


def _attach(session: Session, settings, row: CaseRow, inc: IncidentRow, actor: str) -> None:
    inc.case_id = row.id
    row.first_seen = min(row.first_seen, inc.first_seen)
    row.last_seen = max(row.last_seen, inc.last_seen)
    # The incident as received becomes evidence itself: hashed, so the export proves it.
    snapshot = audit._canonical(inc.as_dict())
    blob = json.dumps(snapshot, sort_keys=True, indent=1).encode()
    sha = evidence.put(settings, blob, "incident", {"incident_id": inc.id, "case_id": row.id},
                       sync=False)  # ingest_incidents syncs the batch once before returning
    _link_evidence(session, settings, row, sha, "incident", len(blob), inc.id, actor)
    for item in inc.evidence or []:
        ref = evidence.adopt(settings, item)
        if ref is None:
            continue  # an inline sample (flow record): kept in the incident snapshot
        info = evidence.info(settings, ref)
        _link_evidence(session, settings, row, ref, str(item.get("kind") or info.kind),
                       info.size, inc.id, actor)
    text = "incident attached" if row.restricted else f"incident #{inc.id}: {inc.summary or inc.rule}"
    _event(session, row, actor, "incident", text[:1000],
           data={"incident_id": inc.id, "rule": inc.rule, "source": inc.source,
                 "first_seen": inc.first_seen, "last_seen": inc.last_seen})
    if inc.clause_id in settings.cases.strike_clauses:
        _add_strike(session, settings, row, inc, actor)


def ingest_incidents(session: Session, settings, now: datetime | None = None,
                     actor: str = "system", limit: int = 20_000) -> list[Case]:
    """Group unassigned, attributed incidents into cases per client x clause.

    An incident joins the newest open case of its client and clause whose last
    activity lies within the grouping window before the incident started;
    otherwise it opens a new case. Returns the cases opened or grown. At most
    `limit` incidents per call (oldest first), so a backlog is worked in bounded batches.
    """
    now = now or utcnow()
    window = timedelta(hours=settings.cases.grouping_window_hours)
    # skip_locked: two ingesters at once (run loop and a desk action) split the work on
    # PostgreSQL instead of attaching an incident twice; SQLite serialises writers anyway.
    pending = session.execute(
        select(IncidentRow).where(IncidentRow.case_id.is_(None), IncidentRow.client_id.is_not(None))
        .order_by(IncidentRow.first_seen, IncidentRow.id).limit(limit)
        .with_for_update(skip_locked=True)).scalars().all()
    touched: dict[int, CaseRow] = {}
    latest: dict[tuple[str, str], CaseRow] = {}  # per batch: saves a query per incident in bursts
    for inc in pending:
        row = latest.get((inc.client_id, inc.clause_id))
        if row is not None and row.last_seen >= inc.first_seen - window:
            _attach(session, settings, row, inc, actor)
            continue
        row = session.execute(
            select(CaseRow).where(CaseRow.client_id == inc.client_id,
                                  CaseRow.clause_id == inc.clause_id,
                                  CaseRow.status.in_(OPEN_STATUSES),
                                  CaseRow.merged_into.is_(None),
                                  CaseRow.last_seen >= inc.first_seen - window)
            .order_by(CaseRow.id.desc()).limit(1)).scalar_one_or_none()
        if row is None:
            row = _open_case(session, settings, inc, now, actor)
        _attach(session, settings, row, inc, actor)
        touched[row.id] = row
        latest[(inc.client_id, inc.clause_id)] = row
    if pending:
        evidence.syncfs(evidence.root(settings))  # snapshots durable before the rows commit
    session.flush()
    return [_to_model(session, r, settings) for r in touched.values()]


# --- reading ----------------------------------------------------------------------------

def list_cases(session: Session, status: str | None = None, client_id: str | None = None,
               clause_id: str | None = None, restricted_ok: bool = False,
               settings=None, limit: int = 1000) -> list[Case]:
    """Cases, newest first. Restricted (CSAM) cases only with restricted_ok=True."""
    query = select(CaseRow).order_by(CaseRow.id.desc()).limit(limit)
    if status:
        if status not in STATUSES:
            raise InputError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        query = query.where(CaseRow.status == status)
    if client_id:
        query = query.where(CaseRow.client_id == client_id)
    if clause_id:
        query = query.where(CaseRow.clause_id == clause_id)
    if not restricted_ok:
        query = query.where(CaseRow.restricted.is_(False))
    return [_to_model(session, r, settings) for r in session.execute(query).scalars()]


def get_case(session: Session, case_id: int, settings=None) -> Case | None:
    """One case (restricted ones too: the caller checks `is_restricted` against the user's role)."""
    row = session.get(CaseRow, int(case_id))
    return _to_model(session, row, settings) if row else None


def timeline(session: Session, case_id: int) -> list[TimelineEntry]:
    _row(session, case_id, lock=False)
    rows = session.execute(select(CaseEventRow).where(CaseEventRow.case_id == int(case_id))
                           .order_by(CaseEventRow.at, CaseEventRow.id)).scalars()
    return [TimelineEntry(id=r.id, at=r.at, actor=r.actor, kind=r.kind, text=r.text,
                          data=r.data or {}) for r in rows]


def case_evidence(session: Session, settings, case_id: int) -> list[EvidenceItem]:
    """Evidence attached to a case: hashes and metadata (never the content)."""
    _row(session, case_id, lock=False)
    out = []
    for r in session.execute(select(CaseEvidenceRow).where(CaseEvidenceRow.case_id == int(case_id))
                             .order_by(CaseEvidenceRow.id)).scalars():
        held, until = evidence.held_until(session, r.sha256)
        out.append(EvidenceItem(sha256=r.sha256, kind=r.kind, size=r.size, incident_id=r.incident_id,
                                added_at=r.added_at, added_by=r.added_by,
                                present=evidence.blob_path(settings, r.sha256).exists(),
                                held=held, held_until=until))
    return out


def orders(session: Session, case_id: int | None = None, client_id: str | None = None,
           active_only: bool = False) -> list[EnforcementOrder]:
    query = select(EnforcementOrderRow).order_by(EnforcementOrderRow.id)
    if case_id is not None:
        query = query.where(EnforcementOrderRow.case_id == int(case_id))
    if client_id:
        query = query.where(EnforcementOrderRow.client_id == client_id)
    if active_only:
        query = query.where(EnforcementOrderRow.status == "active")
    return [EnforcementOrder.model_validate(r) for r in session.execute(query).scalars()]


def mandatory_reports(session: Session, case_id: int) -> list[MandatoryReport]:
    rows = session.execute(select(MandatoryReportRow).where(MandatoryReportRow.case_id == int(case_id))
                           .order_by(MandatoryReportRow.id)).scalars()
    return [MandatoryReport.model_validate(r) for r in rows]


# --- changes by hand --------------------------------------------------------------------

def add_note(session: Session, case_id: int, text: str, actor: str) -> TimelineEntry:
    row = _row(session, case_id)
    text = (text or "").strip()
    if not text:
        raise InputError("a note needs some text")
    event = _event(session, row, actor, "note", text[:MAX_NOTE_CHARS])
    return TimelineEntry(id=event.id, at=event.at, actor=actor, kind="note", text=event.text)


def set_status(session: Session, case_id: int, status: str, actor: str, note: str = "") -> Case:
    """Move a case to `status` if the transition is allowed (see TRANSITIONS)."""
    row = _row(session, case_id)
    if status not in STATUSES:
        raise InputError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    if status == row.status:
        return _to_model(session, row)
    allowed = TRANSITIONS[row.status]
    if status not in allowed:
        raise InputError(f"case #{row.id} is {row.status}; it can move to {', '.join(allowed)}, "
                         f"not {status}")
    if row.restricted and status in NEEDS_REPORT and not _has_report(session, row.id):
        raise AupguardError(
            f"case #{row.id} ({row.clause_id}) cannot be {status} before the mandatory report to "
            "the authority is recorded: `aupguard cases report` (or the legal page)")
    before = row.status
    row.status = status
    now = utcnow()
    if status in ("resolved", "closed", "terminated"):
        row.closed_at = row.closed_at or now
        row.due_at = None
    elif before in ("resolved", "closed"):
        row.closed_at = None
    _event(session, row, actor, "status", note or f"{before} -> {status}",
           before={"status": before}, after={"status": status}, at=now)
    return _to_model(session, row)


def assign(session: Session, case_id: int, owner: str, actor: str) -> Case:
    row = _row(session, case_id)
    before = row.owner
    row.owner = (owner or "").strip()[:200]
    _event(session, row, actor, "assign", f"owner: {before or '-'} -> {row.owner or '-'}",
           before={"owner": before}, after={"owner": row.owner})
    return _to_model(session, row)


def set_priority(session: Session, case_id: int, priority: str, actor: str) -> Case:
    row = _row(session, case_id)
    if priority not in PRIORITIES:
        raise InputError(f"unknown priority {priority!r}; use one of {', '.join(PRIORITIES)}")
    before = row.priority
    row.priority = priority
    _event(session, row, actor, "priority", f"priority: {before} -> {priority}",
           before={"priority": before}, after={"priority": priority})
    return _to_model(session, row)


def set_due(session: Session, case_id: int, due_at: datetime | None, actor: str) -> Case:
    row = _row(session, case_id)
    before = row.due_at
    row.due_at = due_at
    _event(session, row, actor, "due", f"due: {before} -> {due_at}",
           before={"due_at": before}, after={"due_at": due_at})
    return _to_model(session, row)


# --- notices ----------------------------------------------------------------------------

def _recipients(session: Session, row: CaseRow, step: str) -> tuple[list[str], list[str]]:
    chain = directory.reseller_chain(session, row.client_id)
    to = [chain[0].notice_address] if chain[0].notice_address else []
    cc: list[str] = []
    for contact in chain[1:]:
        if contact.notice_address and contact.notice_address not in to + cc:
            cc.append(contact.notice_address)
    if step in ("suspension", "termination"):
        for contact in chain:
            if contact.escalation_email and contact.escalation_email not in to + cc:
                cc.append(contact.escalation_email)
    if not to:
        if not cc:
            raise AupguardError(
                f"client {row.client_id} has no abuse contact (nor does any reseller above it); "
                "set abuse_email in the registry before notifying")
        to, cc = cc[:1], cc[1:]
    return to, cc


def _render(session: Session, settings, row: CaseRow, step: str,
            order: EnforcementOrderRow | None = None, due_at: datetime | None = None) -> NoticePreview:
    clause = directory.clause_text(session, row.clause_id, row.first_seen)
    to, cc = _recipients(session, row, step)
    withhold = bool(row.restricted)
    incidents = [] if withhold else _incidents(session, row.id)
    ladder = ladder_for(settings, row.clause_id)
    idx = ladder.index(step) if step in ladder else row.ladder_step
    next_step = ladder[idx + 1] if idx + 1 < len(ladder) else None
    if due_at is None and next_step:
        due_at = utcnow() + timedelta(hours=settings.cases.step_deadline_hours.get(step, 72))
    link_expires = utcnow() + timedelta(days=settings.cases.client_link_days)
    context = {
        "case": {"id": row.id, "client_id": row.client_id, "clause_id": row.clause_id,
                 "first_seen": row.first_seen, "last_seen": row.last_seen, "status": row.status},
        "client_name": directory.client_name(session, row.client_id),
        "step": step, "step_title": STEP_TITLE.get(step, step.title()),
        "clause": clause,
        "excerpts": notices.excerpts(settings, incidents,
                                     redact_personal=settings.cases.redact_complainant),
        "withhold_evidence": withhold,
        "due_at": due_at, "next_step": next_step,
        "order": ({"kind": order.kind, "action": order.action, "params": order.params}
                  if order else None),
        "reply_to": keys.reply_address(settings, row.id),
        "link": settings.cases.client_link_base + client_token(settings, row.id),
        "link_expires": link_expires,
        "operator": settings.cases.from_address.split("@")[-1],
    }
    rendered = notices.render(settings, row.clause_id, context)
    if withhold:
        # Belt and braces: the restricted template withholds evidence; refuse any that shows some.
        for inc in _incidents(session, row.id):
            for item in inc.evidence or []:
                ref = evidence.ref_of(item)
                if ref and ref in rendered.body:
                    raise AupguardError("refusing to send: the notice template quotes evidence of "
                                        "a restricted case")
    serial = session.execute(select(func.count()).select_from(CaseEventRow).where(
        CaseEventRow.case_id == row.id)).scalar_one()
    reply_to = keys.reply_address(settings, row.id)
    headers = {"Reply-To": reply_to, "Message-ID": keys.message_id(settings, row.id, serial),
               "X-Aupguard-Case": str(row.id), "X-Aupguard-Clause": row.clause_id}
    if cc:
        headers["Cc"] = ", ".join(cc)
    return NoticePreview(to=to, cc=cc, subject=rendered.subject, body=rendered.body,
                         reply_to=reply_to, step=step, headers=headers)


def preview_notice(session: Session, settings, case_id: int, step: str | None = None) -> NoticePreview:
    """The notice that `send_notice` (or the next escalation step) would queue, without queuing it."""
    row = _row(session, case_id, lock=False)
    ladder = ladder_for(settings, row.clause_id)
    if step is None:
        step = ladder[row.ladder_step + 1] if row.ladder_step + 1 < len(ladder) else "notice"
    return _render(session, settings, row, step)


def _queue(session: Session, row: CaseRow, preview: NoticePreview, actor: str) -> OutboxMessage:
    message = enqueue(session, kind="notice", to=preview.to, subject=preview.subject,
                      body=preview.body, client_id=row.client_id, headers=preview.headers,
                      ref=f"case:{row.id}")
    row.last_notice_at = utcnow()
    _event(session, row, actor, "notice",
           f"{preview.step} queued to {', '.join(preview.to + preview.cc)}",
           data={"outbox_id": message.id, "step": preview.step, "to": preview.to, "cc": preview.cc,
                 "subject": preview.subject})
    return message


def send_notice(session: Session, settings, case_id: int, actor: str) -> OutboxMessage:
    """Queue the notice to the client (and up the reseller chain); the case becomes notified."""
    row = _row(session, case_id)
    if row.status not in OPEN_STATUSES:
        raise InputError(f"case #{row.id} is {row.status}; reopen it before notifying")
    ladder = ladder_for(settings, row.clause_id)
    first_notice = row.ladder_step < 0 and ladder and ladder[0] == "notice"
    hours = settings.cases.step_deadline_hours.get("notice", 72)
    due = utcnow() + timedelta(hours=hours)
    preview = _render(session, settings, row, "notice", due_at=due)
    message = _queue(session, row, preview, actor)
    before = {"status": row.status, "ladder_step": row.ladder_step}
    if first_notice:
        row.ladder_step = 0
    if row.status in ("open", "awaiting_client", "notified"):
        row.status = "notified"
    row.due_at = due
    _event(session, row, actor, "status", f"{before['status']} -> {row.status} (notice sent)",
           before=before, after={"status": row.status, "ladder_step": row.ladder_step,
                                 "due_at": due})
    return message


def _order_spec(settings, row: CaseRow, step: str) -> tuple[str, dict[str, Any]]:
    cfg = settings.cases
    if step == "restriction":
        action = cfg.restriction_kind.get(row.clause_id, cfg.default_restriction)
        params: dict[str, Any] = {"rate_bps": cfg.rate_limit_bps} if action == "rate-limit" else {
            "port": 25, "protocol": "tcp", "direction": "outbound"}
        return action, params
    if step == "suspension":
        return "suspend-service", {}
    return "terminate-contract", {}


def _issue_order(session: Session, settings, row: CaseRow, step: str, actor: str) -> EnforcementOrderRow:
    action, params = _order_spec(settings, row, step)
    order = EnforcementOrderRow(case_id=row.id, client_id=row.client_id, kind=step, action=action,
                                params=params, status="active", issued_at=utcnow(), issued_by=actor)
    session.add(order)
    session.flush()
    _event(session, row, actor, "order", f"enforcement order #{order.id}: {step} ({action})",
           data={"order_id": order.id, "kind": step, "action": action, "params": params})
    return order


def lift_order(session: Session, order_id: int, actor: str, note: str = "") -> EnforcementOrder:
    order = session.get(EnforcementOrderRow, int(order_id))
    if order is None:
        raise InputError(f"no enforcement order #{order_id}")
    if order.status != "active":
        raise InputError(f"order #{order_id} is already {order.status}")
    order.status, order.lifted_at = "lifted", utcnow()
    _event(session, _row(session, order.case_id), actor, "order.lift",
           note or f"enforcement order #{order.id} lifted", before={"status": "active"},
           after={"status": "lifted", "order_id": order.id})
    return EnforcementOrder.model_validate(order)


def escalate(session: Session, settings, case_id: int, actor: str,
             now: datetime | None = None) -> Step:
    """Take the next step of the clause's ladder: notice, warning, restriction, suspension, termination."""
    row = _row(session, case_id)
    now = now or utcnow()
    if row.status not in OPEN_STATUSES:
        raise InputError(f"case #{row.id} is {row.status}; only open cases escalate")
    ladder = ladder_for(settings, row.clause_id)
    index = row.ladder_step + 1
    if index >= len(ladder):
        raise InputError(f"case #{row.id} is at the last step of its ladder ({ladder[-1]})")
    step = ladder[index]
    if step not in STEP_STATUS:
        raise AupguardError(f"ladder of {row.clause_id} names unknown step {step!r}; "
                            f"use {', '.join(STEP_STATUS)}")
    enforce = step in ("restriction", "suspension", "termination")
    next_step = ladder[index + 1] if index + 1 < len(ladder) else None
    hours = settings.cases.step_deadline_hours.get(step, 72)
    due = now + timedelta(hours=hours) if next_step else None
    # Render first: a case that cannot be notified (no contact, broken template) fails
    # here, before any order or message exists, so nothing half-done is left behind.
    spec = None
    if enforce:
        action, params = _order_spec(settings, row, step)
        spec = EnforcementOrderRow(kind=step, action=action, params=params)
    preview = _render(session, settings, row, step, order=spec, due_at=due)
    order = _issue_order(session, settings, row, step, actor) if enforce else None
    message = _queue(session, row, preview, actor)
    before = {"status": row.status, "ladder_step": row.ladder_step, "due_at": row.due_at}
    row.status = STEP_STATUS[step]
    row.ladder_step = index
    row.due_at = due
    if row.status == "terminated":
        row.closed_at = now
    _event(session, row, actor, "escalate", f"step {index + 1}/{len(ladder)}: {step}",
           before=before, after={"status": row.status, "ladder_step": index, "due_at": due,
                                 "order_id": order.id if order else None}, at=now)
    return Step(case_id=row.id, index=index, name=step, status=row.status, actor=actor, at=now,
                due_at=due, next_step=next_step, order_id=order.id if order else None,
                message_id=message.id)


def run_deadlines(session: Session, settings, now: datetime | None = None,
                  actor: str = "system:deadline") -> list[Step]:
    """Escalate every case whose deadline has passed (the ladder's automatic steps).

    Untriaged cases get their first notice only with ``auto_first_notice``; cases
    awaiting the client (who answered) wait for an analyst.
    """
    now = now or utcnow()
    cfg = settings.cases
    if not cfg.auto_escalate:
        return []
    due = session.execute(
        select(CaseRow).where(CaseRow.status.in_(OPEN_STATUSES), CaseRow.status != "awaiting_client",
                              CaseRow.merged_into.is_(None), CaseRow.due_at.is_not(None),
                              CaseRow.due_at <= now)
        .order_by(CaseRow.due_at, CaseRow.id).with_for_update(skip_locked=True)).scalars().all()
    steps = []
    for row in due:
        if row.ladder_step < 0 and not cfg.auto_first_notice:
            continue
        if row.ladder_step + 1 >= len(ladder_for(settings, row.clause_id)):
            continue
        try:
            steps.append(escalate(session, settings, row.id, actor, now=now))
        except AupguardError as exc:
            # One case that cannot escalate (e.g. no abuse contact) must not stop the others;
            # it is retried a day later and the desk sees why on its timeline.
            before = row.due_at
            row.due_at = now + timedelta(hours=RETRY_FAILED_STEP_HOURS)
            _event(session, row, actor, "escalate.failed", str(exc)[:1000],
                   before={"due_at": before}, after={"due_at": row.due_at}, at=now)
    return steps


# --- legal duties -----------------------------------------------------------------------

def record_mandatory_report(session: Session, case_id: int, authority: str, report_id: str,
                            at: datetime, actor: str, settings=None) -> MandatoryReport:
    """Record the report to the authority; evidence stays held >= legal_hold_days from `at`."""
    settings = _settings_default(settings)
    row = _row(session, case_id)
    authority, report_id = (authority or "").strip(), (report_id or "").strip()
    if not authority or not report_id:
        raise InputError("a mandatory report needs the authority and its report id")
    if at.tzinfo is None:
        raise InputError("the report time needs a time zone (UTC)")
    report = MandatoryReportRow(case_id=row.id, authority=authority[:200], report_id=report_id[:200],
                                reported_at=at, recorded_by=actor, recorded_at=utcnow())
    session.add(report)
    session.flush()
    until = at + timedelta(days=settings.cases.legal_hold_days)
    # The open-ended "pending report" holds become holds until report + hold period
    # (never shorter than any hold already placed).
    for hold in session.execute(select(LegalHoldRow).where(LegalHoldRow.case_id == row.id)).scalars():
        if hold.until is None or hold.until < until:
            before = hold.until
            hold.until = until
            audit.record(session, actor, "evidence.hold.update", "evidence", hold.sha256,
                         before={"until": before}, after={"until": until, "case": row.id})
    for item in session.execute(select(CaseEvidenceRow.sha256).where(
            CaseEvidenceRow.case_id == row.id)).scalars():
        held, held_to = evidence.held_until(session, item)
        if not held:
            evidence.place_hold(session, item, until=until, case_id=row.id, actor=actor,
                                reason=f"mandatory report {report_id} to {authority}")
    _event(session, row, actor, "mandatory_report", f"reported to {authority} as {report_id}",
           data={"report_id": report.id, "authority": authority, "external_id": report_id,
                 "reported_at": at, "hold_until": until})
    return MandatoryReport.model_validate(report)


def _add_strike(session: Session, settings, row: CaseRow, inc: IncidentRow, actor: str) -> None:
    if session.execute(select(StrikeRow.id).where(StrikeRow.incident_id == inc.id)).first():
        return
    strike = StrikeRow(client_id=row.client_id, case_id=row.id, incident_id=inc.id,
                       clause_id=inc.clause_id, at=inc.first_seen,
                       reference=(inc.key or inc.summary)[:500])
    session.add(strike)
    session.flush()
    audit.record(session, actor, "strike.add", "client", row.client_id,
                 after={"strike": strike.id, "case": row.id, "incident": inc.id})
    summary = strikes(session, row.client_id, settings=settings)
    if summary.active in (summary.warning_threshold, summary.termination_threshold):
        _event(session, row, actor, "strikes", summary.recommendation,
               data={"active": summary.active, "level": summary.level})


def strikes(session: Session, client_id: str, settings=None,
            now: datetime | None = None) -> StrikeSummary:
    """The client's repeat-infringer ledger and what it calls for."""
    cfg = _settings_default(settings).cases
    now = now or utcnow()
    since = now - timedelta(days=cfg.strike_window_days)
    rows = session.execute(select(StrikeRow).where(StrikeRow.client_id == client_id)
                           .order_by(StrikeRow.at, StrikeRow.id)).scalars().all()
    entries = [StrikeEntry(id=r.id, case_id=r.case_id, incident_id=r.incident_id, at=r.at,
                           reference=r.reference, withdrawn=r.withdrawn_at is not None) for r in rows]
    active = sum(1 for r in rows if r.withdrawn_at is None and since <= r.at <= now)
    if active >= cfg.strike_termination_threshold:
        level = "terminate"
        text = (f"{active} strikes in {cfg.strike_window_days} days (threshold "
                f"{cfg.strike_termination_threshold}): termination recommended as a repeat infringer")
    elif active >= cfg.strike_warning_threshold:
        level = "warning"
        text = (f"{active} strikes in {cfg.strike_window_days} days: final warning; termination "
                f"at {cfg.strike_termination_threshold}")
    else:
        level, text = "none", f"{active} strikes in {cfg.strike_window_days} days"
    return StrikeSummary(client_id=client_id, active=active, window_days=cfg.strike_window_days,
                         warning_threshold=cfg.strike_warning_threshold,
                         termination_threshold=cfg.strike_termination_threshold,
                         level=level, recommendation=text, entries=entries)


def withdraw_strike(session: Session, strike_id: int, reason: str, actor: str) -> None:
    """Withdraw a strike (counter-notice upheld, notice retracted). Audited; the row stays."""
    strike = session.get(StrikeRow, int(strike_id))
    if strike is None:
        raise InputError(f"no strike #{strike_id}")
    if not reason.strip():
        raise InputError("say why the strike is withdrawn")
    strike.withdrawn_at, strike.withdrawn_reason = utcnow(), reason.strip()[:2000]
    _event(session, _row(session, strike.case_id), actor, "strike.withdraw",
           f"strike #{strike.id} withdrawn: {strike.withdrawn_reason}",
           data={"strike": strike.id})


# --- merge and split --------------------------------------------------------------------

def merge(session: Session, target_id: int, source_ids: list[int], actor: str) -> Case:
    """Move the incidents, evidence, strikes and reports of `source_ids` into `target_id`."""
    target = _row(session, target_id)
    sources = [_row(session, s) for s in source_ids if int(s) != target.id]
    if not sources:
        raise InputError("name at least one other case to merge into the target")
    for src in sources:
        if src.client_id != target.client_id:
            raise InputError(f"case #{src.id} belongs to {src.client_id}, case #{target.id} to "
                             f"{target.client_id}: only cases of one client merge")
        if src.merged_into is not None:
            raise InputError(f"case #{src.id} was already merged into #{src.merged_into}")
    for src in sources:
        for inc in _incidents(session, src.id):
            inc.case_id = target.id
        for model in (CaseEvidenceRow, MandatoryReportRow, EnforcementOrderRow):
            for item in session.execute(select(model).where(model.case_id == src.id)).scalars():
                item.case_id = target.id
        for strike in session.execute(select(StrikeRow).where(StrikeRow.case_id == src.id)).scalars():
            strike.case_id = target.id
        for hold in session.execute(select(LegalHoldRow).where(LegalHoldRow.case_id == src.id)).scalars():
            hold.case_id = target.id
        if src.restricted and not target.restricted:
            target.restricted = True
        before = src.status
        src.status, src.merged_into, src.closed_at = "closed", target.id, utcnow()
        _event(session, src, actor, "merged", f"merged into case #{target.id}",
               before={"status": before}, after={"status": "closed", "merged_into": target.id})
    session.flush()
    _recompute_span(session, target)
    _event(session, target, actor, "merge", "merged cases " + ", ".join(f"#{s.id}" for s in sources),
           data={"sources": [s.id for s in sources]})
    return _to_model(session, target)


def split(session: Session, case_id: int, incident_ids: list[int], actor: str) -> Case:
    """Move the given incidents of a case into a new case of the same client and clause."""
    row = _row(session, case_id)
    wanted = {int(i) for i in incident_ids}
    moving = [inc for inc in _incidents(session, row.id) if inc.id in wanted]
    if len(moving) != len(wanted):
        missing = wanted - {inc.id for inc in moving}
        raise InputError(f"incidents {sorted(missing)} are not in case #{row.id}")
    remaining = len(_incidents(session, row.id)) - len(moving)
    if not moving or remaining == 0:
        raise InputError("a split moves some, not all, of the case's incidents")
    now = utcnow()
    clauses = {inc.clause_id for inc in moving}
    clause = clauses.pop() if len(clauses) == 1 else row.clause_id
    new = CaseRow(client_id=row.client_id, clause_id=clause, status="open", owner=row.owner,
                  priority=row.priority, title=f"split from #{row.id}: {row.title}"[:500],
                  restricted=row.restricted, opened_at=now, updated_at=now,
                  first_seen=min(i.first_seen for i in moving),
                  last_seen=max(i.last_seen for i in moving), due_at=row.due_at, ladder_step=-1)
    session.add(new)
    session.flush()
    ids = sorted(wanted)
    for inc in moving:
        inc.case_id = new.id
    for item in session.execute(select(CaseEvidenceRow).where(
            CaseEvidenceRow.case_id == row.id, CaseEvidenceRow.incident_id.in_(ids))).scalars():
        item.case_id = new.id
    for strike in session.execute(select(StrikeRow).where(StrikeRow.incident_id.in_(ids))).scalars():
        strike.case_id = new.id
    session.flush()
    _recompute_span(session, row)
    _event(session, new, actor, "open", f"split from case #{row.id}",
           after={"client": new.client_id, "clause": new.clause_id, "from_case": row.id,
                  "incidents": ids})
    _event(session, row, actor, "split", f"incidents {ids} moved to new case #{new.id}",
           data={"new_case": new.id, "incidents": ids})
    return _to_model(session, new)


# --- the client's side ------------------------------------------------------------------

def _serializer(settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(keys.secret(settings), salt=SELF_HELP_SALT)


def client_token(settings, case_id: int) -> str:
    """Token of the client's self-help link (no account; expires after client_link_days)."""
    return _serializer(settings).dumps({"case": int(case_id)})


def _token_case(session: Session, settings, token: str) -> CaseRow:
    max_age = settings.cases.client_link_days * 86400
    try:
        data = _serializer(settings).loads(token, max_age=max_age)
    except SignatureExpired:
        raise InputError("this link has expired; reply to the notice e-mail instead") from None
    except BadSignature:
        raise InputError("this link is not valid") from None
    row = _row(session, int(data["case"]))
    while row.merged_into is not None:  # the link of a merged case shows where it lives now
        row = _row(session, row.merged_into)
    return row


def client_view(session: Session, settings, token: str) -> ClientView:
    """What the client sees through its link: the clause, what happened, the messages."""
    row = _token_case(session, settings, token)
    clause = directory.clause_text(session, row.clause_id, row.first_seen)
    happened = []
    if not row.restricted:
        for ex in notices.excerpts(settings, _incidents(session, row.id),
                                   redact_personal=settings.cases.redact_complainant):
            happened.append({"first_seen": ex.first_seen, "last_seen": ex.last_seen,
                             "summary": ex.summary or ex.rule, "source": ex.offender,
                             "target": ex.victim, "excerpt": ex.text})
    messages = [e for e in timeline(session, row.id) if e.kind in ("notice", "client.reply")]
    for m in messages:  # analysts' addresses of other recipients stay internal
        m.data = {k: v for k, v in m.data.items() if k in ("step", "subject")}
    return ClientView(case_id=row.id, client_name=directory.client_name(session, row.client_id),
                      clause_id=row.clause_id, clause_text=clause.text, status=row.status,
                      opened_at=row.opened_at, due_at=row.due_at, what_happened=happened,
                      messages=messages,
                      link_expires=utcnow() + timedelta(days=settings.cases.client_link_days))


def _client_answer(session: Session, row: CaseRow, text: str, actor: str, via: str,
                   data: dict[str, Any] | None = None) -> CaseEventRow:
    text = notices.sanitise(text or "", MAX_REPLY_CHARS).strip()
    if not text:
        raise InputError("the answer is empty")
    now = utcnow()
    row.last_reply_at = now
    event = _event(session, row, actor, "client.reply", text, data={"via": via, **(data or {})},
                   at=now)
    if row.status == "notified":
        row.status = "awaiting_client"
        _event(session, row, actor, "status", "notified -> awaiting_client (client answered)",
               before={"status": "notified"}, after={"status": "awaiting_client"}, at=now)
    return event


def client_reply(session: Session, settings, token: str, text: str) -> TimelineEntry:
    """The client's answer through the self-help link."""
    row = _token_case(session, settings, token)
    event = _client_answer(session, row, text, f"client:{row.client_id}", "link")
    return TimelineEntry(id=event.id, at=event.at, actor=event.actor, kind=event.kind,
                         text=event.text, data=event.data or {})


_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]{0,2000}>", re.IGNORECASE | re.DOTALL)


def _plain_text(message) -> str:
    """The answer's text: the text/plain part, else the HTML part with tags removed
    (shown as text, never rendered), else a note that there is none."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return "(no text part; the raw message is kept as evidence)"
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, AttributeError, KeyError):
        content = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    if not isinstance(content, str):
        return "(no text part; the raw message is kept as evidence)"
    if part.get_content_type() == "text/html":
        content = html.unescape(_TAG.sub(" ", content))
    return content


def is_case_reply(settings, recipients: list[str]) -> bool:
    """True when one of the addresses is a valid per-case reply address: intake's mail
    listener hands such messages to `thread_reply` instead of parsing them as complaints."""
    return bool(keys.find_case_tokens(settings, " ".join(recipients)))


def thread_reply(session: Session, raw_message_bytes: bytes, settings=None) -> Case | None:
    """Thread a client's answer (raw RFC 5322 mail) into its case.

    The case comes only from a MAC-verified token (the per-case reply address
    or a Message-ID we issued in In-Reply-To/References): a guessed subject
    like "[case #12]" threads nothing. Returns None when no case matches.
    """
    settings = _settings_default(settings)
    if len(raw_message_bytes) > evidence.MAX_BLOB:
        raise InputError("reply too large")
    message = email.message_from_bytes(raw_message_bytes, policy=email.policy.default)
    fields = []
    for name in ("To", "Cc", "Delivered-To", "X-Original-To", "In-Reply-To", "References"):
        for value in message.get_all(name) or []:
            fields.append(str(value))
    case_ids = keys.find_case_tokens(settings, " ".join(fields))
    if not case_ids:
        return None
    row = session.get(CaseRow, case_ids[0])
    if row is None:
        return None
    while row.merged_into is not None:  # answers to a merged case go to where it lives now
        row = _row(session, row.merged_into)
    sha = evidence.put(settings, raw_message_bytes, "client-reply", {"case_id": row.id})
    _link_evidence(session, settings, row, sha, "client-reply", len(raw_message_bytes), None,
                   "system:mail")
    sender = notices.sanitise(str(message.get("From", "")), 300)
    subject = notices.sanitise(str(message.get("Subject", "")), 300)
    _client_answer(session, row, _plain_text(message), f"client:{row.client_id}", "mail",
                   data={"from": sender, "subject": subject, "sha256": sha})
    return _to_model(session, row, settings)


class PeriodicReport(BaseModel):
    cases: list[int] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    sent: list[int] = Field(default_factory=list)
    deferred: list[int] = Field(default_factory=list)
    failed: list[int] = Field(default_factory=list)
    delivery_enabled: bool = False


def periodic(session: Session, settings, now: datetime | None = None) -> PeriodicReport:
    """One round of the stage's background work (for `aupguard run` and the demo):
    group new incidents, take due ladder steps, deliver the outbox."""
    now = now or utcnow()
    touched = ingest_incidents(session, settings, now=now)
    steps = run_deadlines(session, settings, now)
    delivery = deliver_outbox(session, settings, now=now)
    return PeriodicReport(cases=[c.id for c in touched], steps=steps, sent=delivery.sent,
                          deferred=delivery.deferred, failed=delivery.failed,
                          delivery_enabled=delivery.enabled)
