"""From raw bytes to stored, attributed events: the one path every receiver uses.

``prepare`` (no database) stores the raw message content-addressed, then
parses it; ``commit`` writes a batch of prepared messages in one transaction:
message rows, de-duplication, attribution, incidents, replies, audit.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from aupguard.incidents import Finding, report
from aupguard.intake.attribution import attribute
from aupguard.intake.events import ComplaintEvent
from aupguard.intake.mime import Complaint, Limits, parse_complaint
from aupguard.intake.models import EventRow, MessageRow
from aupguard.intake.parsers import ParseContext, parse
from aupguard.intake.parsers.shadowserver import load_catalogue
from aupguard.intake.rawstore import RawStore
from aupguard.intake.reporters import queue_reply, rule_for, should_reply
from aupguard.store import audit
from aupguard.store.types import utcnow


@dataclass
class Prepared:
    sha256: str
    raw_ref: str
    size: int
    content_hash: str
    complaint: Complaint
    parser: str
    events: list[ComplaintEvent]
    errors: list[str]
    source: str
    received_at: datetime


@dataclass
class Ingested:
    message_id: int
    reference: str
    status: str
    parser: str
    event_ids: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def clean(value):
    """Text safe for every database: no NUL (PostgreSQL refuses it), no lone surrogates
    (compat32 keeps undecodable header bytes as surrogate escapes), recursively."""
    if isinstance(value, str):
        try:
            value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {clean(str(k)): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def content_hash(raw: bytes) -> str:
    """Hash of the body only, line ends normalised: a complaint re-sent through other relays
    (new Received headers) or imported from a file (LF, not CRLF) hashes the same."""
    text = raw.replace(b"\r\n", b"\n")
    _, found, body = text.partition(b"\n\n")
    return hashlib.sha256(body if found else text).hexdigest()


def finding_for(session: Session, row: EventRow, reference: str, raw_ref: str,
                chains: dict[str, list[str]] | None = None) -> Finding:
    """The incident finding for an attributed event (key per reporter + event).
    `chains` memoises reseller chains within one batch."""
    chain: list[str] = []
    if row.client_id and chains is not None and row.client_id in chains:
        chain = chains[row.client_id]
    elif row.client_id:
        try:
            from aupguard.registry import reseller_chain

            chain = [c.id for c in reseller_chain(session, row.client_id)]
        except Exception:  # noqa: BLE001 - chain is advisory; the client is what counts
            chain = [row.client_id]
        if chains is not None:
            chains[row.client_id] = chain
    row.reseller_chain = chain
    offender = row.ip + (f":{row.port}" if row.port else "") if row.ip else ""
    return Finding(
        source="complaint", rule=row.parser, clause_id=row.clause_id,
        key=f"complaint:{row.dedupe_key or f'event:{row.id}'}", first_seen=row.time,
        last_seen=row.time,
        client_id=row.client_id, offender=offender, victim="",
        summary=f"{row.category} reported by {row.reporter or 'unknown reporter'} "
                f"about {offender} (ref {reference})"[:1000],
        metrics={"reseller_chain": chain, "reporter": row.reporter},
        evidence=[{"kind": "complaint", "reference": reference, "event_id": row.id,
                   "raw_ref": raw_ref, "excerpt": row.excerpt[:500]}],
        peak=1.0)


class Intake:
    """The intake pipeline for one configuration and store."""

    def __init__(self, settings, store, *, index_ttl: float = 10.0):
        self.settings = settings
        self.config = settings.intake
        self.store = store
        self.limits = Limits.from_settings(self.config)
        self.raw = RawStore(Path(settings.data_dir) / "intake")
        self.catalogue = load_catalogue(self.config.shadowserver_catalogue)
        self.index_ttl = index_ttl
        self._index = None
        self._index_at = 0.0
        self._chains: dict[str, list[str]] = {}

    # -- parsing (no database) -------------------------------------------------------------
    def prepare(self, raw: bytes, *, source: str = "smtp", filename: str = "",
                received_at: datetime | None = None, sync: bool = True) -> Prepared:
        # Stored before parsing; with sync=False made durable by one syncfs per batch,
        # still before the database records it (commit calls raw.sync()).
        sha, ref = self.raw.put(raw, sync=sync)
        complaint = parse_complaint(raw, self.limits, filename)
        ctx = ParseContext(excerpt_chars=self.config.excerpt_chars,
                           max_events=self.config.max_events_per_message,
                           shadowserver_catalogue=self.catalogue,
                           xarf_schema_dir=self.config.xarf_schema_dir,
                           errors=list(complaint.errors))
        parser, events = parse(complaint, ctx)
        return Prepared(sha, ref, len(raw), content_hash(raw), complaint, parser, events,
                        ctx.errors, source, received_at or utcnow())

    # -- attribution index -----------------------------------------------------------------
    def index(self, session: Session):
        now = time.monotonic()
        if self._index is None or now - self._index_at > self.index_ttl:
            from aupguard.registry import load_index

            self._index = load_index(session)
            self._index_at = now
        return self._index

    def refresh_index(self) -> None:
        self._index = None

    # -- storing ---------------------------------------------------------------------------
    def ingest(self, raw: bytes, **kwargs) -> Ingested:
        prepared = self.prepare(raw, **kwargs)  # sync=True: a lone message fsyncs itself
        return self.store_prepared([prepared])[0]

    def ingest_many(self, raws, batch: int = 200, **kwargs) -> list[Ingested]:
        """Many messages, one transaction per batch; a batch that fails is retried one
        message at a time so one bad message cannot take its neighbours down."""
        results: list[Ingested] = []
        pending: list[Prepared] = []
        for item in raws:
            data, filename = item if isinstance(item, tuple) else (item, "")
            pending.append(self.prepare(data, filename=filename, sync=False, **kwargs))
            if len(pending) >= batch:
                results.extend(self.store_prepared(pending))
                pending = []
        if pending:
            results.extend(self.store_prepared(pending))
        return results

    def store_prepared(self, pending: list[Prepared]) -> list[Ingested]:
        try:
            with self.store.session() as session:
                return self.commit(session, pending)
        except Exception:  # noqa: BLE001 - isolate the culprit below
            if len(pending) == 1:
                return [self.record_failure(pending[0])]
            out: list[Ingested] = []
            for prepared in pending:
                out.extend(self.store_prepared([prepared]))
            return out

    def record_failure(self, p: Prepared, exc: BaseException | None = None) -> Ingested:
        """Keep a visible record of a message whose processing failed (its raw is stored)."""
        import sys
        import traceback

        exc = exc or sys.exc_info()[1]
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip() if exc else ""
        reference = f"AUP-{p.received_at:%Y%m%d}-{uuid.uuid4().hex[:8].upper()}"
        with self.store.session() as session:
            row = MessageRow(reference=reference, sha256=p.sha256, content_hash=p.content_hash,
                             raw_ref=p.raw_ref, size=p.size, received_at=p.received_at,
                             source=p.source, reporter=clean(p.complaint.sender)[:254],
                             subject=clean(p.complaint.subject), parser=p.parser,
                             status="failed", error=clean(f"processing failed: {detail}")[:20000])
            session.add(row)
            session.flush()
            audit.record(session, "intake", "intake.failed", "intake_message", row.id,
                         after={"reference": reference, "sha256": p.sha256})
            return Ingested(row.id, reference, "failed", p.parser, [], [detail])

    def commit(self, session: Session, batch: list[Prepared]) -> list[Ingested]:
        """Store a batch in the caller's transaction: one query per kind of lookup and one
        flush per table for the whole batch; incidents, audit and replies per item."""
        self.raw.sync()
        self._chains = {}
        index = self.index(session)
        tolerance = timedelta(hours=self.config.time_tolerance_hours)
        all_events = [e for p in batch for e in p.events]
        outcomes = attribute(index, all_events, tolerance) if all_events else []
        plans, offset = [], 0
        for p in batch:
            mine = outcomes[offset:offset + len(p.events)]
            offset += len(p.events)
            sender = clean(p.complaint.sender
                           or next((e.reporter for e in p.events if e.reporter), ""))
            rule = rule_for(self.config, sender)
            trust = rule.trust if rule else self.config.default_trust
            plans.append((p, mine, sender, rule, trust))
        messages = self._message_rows(session, plans)
        rows, owners = self._event_rows(session, plans, messages)
        ids: dict[int, list[int]] = {}
        for row, position in zip(rows, owners):
            ids.setdefault(position, []).append(row.id)
        results = []
        for position, ((p, _, sender, rule, _), message) in enumerate(zip(plans, messages)):
            if message.status == "duplicate":
                audit.record(session, "intake", "intake.duplicate", "intake_message",
                             message.id, after={"reference": message.reference,
                                                "duplicate_of": message.duplicate_of})
                results.append(Ingested(message.id, message.reference, "duplicate", p.parser,
                                        [], p.errors))
                continue
            event_ids = ids.get(position, [])
            audit.record(session, "intake", "intake.receive", "intake_message", message.id,
                         after={"reference": message.reference, "sha256": p.sha256,
                                "parser": p.parser, "status": message.status,
                                "events": len(event_ids), "reporter": sender})
            c = p.complaint
            if should_reply(self.config, rule, c.reply_to, c.header("Auto-Submitted")):
                queue_reply(session, self.config, reference=message.reference,
                            reply_to=c.reply_to, subject=c.subject,
                            message_id=c.header("Message-ID"), events=p.events,
                            at=p.received_at)
            results.append(Ingested(message.id, message.reference, message.status, p.parser,
                                    event_ids, p.errors))
        return results

    def _message_rows(self, session: Session, plans) -> list[MessageRow]:
        """One row per message; same reporter and body as an earlier message: duplicate."""
        hashes = sorted({p.content_hash for p, *_ in plans})
        earlier: dict[tuple[str, str], int] = {}
        for start in range(0, len(hashes), 500):
            for mid, reporter, digest in session.execute(
                    select(MessageRow.id, MessageRow.reporter, MessageRow.content_hash)
                    .where(MessageRow.content_hash.in_(hashes[start:start + 500]),
                           MessageRow.status != "duplicate").order_by(MessageRow.id)):
                earlier.setdefault((reporter, digest), mid)
        rows, first_in_batch, twins = [], {}, {}
        for position, (p, _, sender, _, trust) in enumerate(plans):
            c = p.complaint
            row = MessageRow(
                reference=f"AUP-{p.received_at:%Y%m%d}-{uuid.uuid4().hex[:8].upper()}",
                sha256=p.sha256, content_hash=p.content_hash, raw_ref=p.raw_ref, size=p.size,
                received_at=p.received_at, source=p.source, reporter=sender,
                message_id=clean(c.header("Message-ID")[:500]), subject=clean(c.subject),
                parser=p.parser, error=clean("\n".join(p.errors)[:20000]), trust=trust,
                event_count=len(p.events))
            key = (sender, p.content_hash)
            if key in earlier:
                row.status, row.duplicate_of, row.event_count = "duplicate", earlier[key], 0
            elif key in first_in_batch:
                row.status, row.event_count = "duplicate", 0
                twins[position] = first_in_batch[key]
            else:
                first_in_batch[key] = row
                if not p.events:
                    row.status = "failed" if p.errors else "empty"
                else:
                    row.status = "partial" if p.errors else "parsed"
            rows.append(row)
        session.add_all(rows)
        session.flush()
        for position, first in twins.items():
            rows[position].duplicate_of = first.id
        return rows

    def _event_rows(self, session: Session, plans, messages) -> tuple[list[EventRow], list[int]]:
        """Event rows for the batch, de-duplicated against stored events and each other;
        then incidents opened or grown, in arrival order."""
        window = timedelta(hours=self.config.dedupe_window_hours)
        keyed = []   # (position, event, outcome, key)
        for position, ((p, mine, sender, _, _), message) in enumerate(zip(plans, messages)):
            if message.status == "duplicate":
                continue
            for event, outcome in zip(p.events, mine):
                keyed.append((position, event, outcome, self._dedupe_key(sender, event)))
        wanted = sorted({k for *_, k in keyed if k})
        known: dict[str, list[EventRow]] = {}
        for start in range(0, len(wanted), 500):
            for row in session.execute(select(EventRow).where(
                    EventRow.dedupe_key.in_(wanted[start:start + 500]),
                    EventRow.status != "duplicate")).scalars():
                known.setdefault(row.dedupe_key, []).append(row)
        rows: list[EventRow] = []
        owners: list[int] = []
        twins: dict[int, EventRow] = {}
        now = utcnow()
        for position, event, outcome, key in keyed:
            p, _, sender, _, trust = plans[position]
            status, reason = outcome.status, outcome.reason
            if status == "attributed" and trust < self.config.auto_trust:
                status, reason = "review", f"reporter trust {trust} below intake.auto_trust"
            row = EventRow(
                message_id=messages[position].id, ip=event.ip, port=event.port,
                time=event.time, time_uncertainty=event.time_uncertainty,
                category=event.category, clause_id=event.clause_id, parser=event.parser,
                reporter=clean((event.reporter or sender)[:254]), url=clean(event.url),
                domain=clean(event.domain), excerpt=clean(event.excerpt),
                extra=clean(event.extra), client_id=outcome.client_id,
                candidates=outcome.candidates, reseller_chain=[], status=status,
                review_reason=reason, dedupe_key=key, created_at=now)
            twin = self._twin(known.get(key, []), event, window) if key else None
            if twin is not None:
                row.status = "duplicate"
                twins[len(rows)] = twin
            elif key:
                known.setdefault(key, []).append(row)
            rows.append(row)
            owners.append(position)
        session.add_all(rows)
        session.flush()
        for index, (row, position) in enumerate(zip(rows, owners)):
            message = messages[position]
            twin = twins.get(index)
            if twin is not None:
                row.duplicate_of = twin.id
                row.client_id = row.client_id or twin.client_id
                if twin.incident_id is not None:
                    row.incident_id = twin.incident_id
                    self._grow_incident(session, row, message.reference, message.raw_ref)
            elif row.status == "attributed":
                self._open_incident(session, row, message.reference, message.raw_ref)
        return rows, owners

    @staticmethod
    def _dedupe_key(reporter: str, event: ComplaintEvent) -> str:
        if event.ip is None:
            return ""
        return clean(f"{reporter.lower()}|{event.ip}|{event.port or ''}|{event.category}")[:500]

    @staticmethod
    def _twin(candidates: list[EventRow], event: ComplaintEvent, window: timedelta):
        if event.time is None:
            return None
        for row in candidates:
            if row.time is not None and abs(row.time - event.time) <= window:
                return row
        return None

    def _open_incident(self, session, row: EventRow, reference: str, raw_ref: str) -> None:
        incident = report(session, finding_for(session, row, reference, raw_ref, self._chains),
                          actor="intake")
        row.incident_id = incident.id

    def _grow_incident(self, session, row: EventRow, reference: str, raw_ref: str) -> None:
        if row.time is None:
            return
        incident = report(session, finding_for(session, row, reference, raw_ref, self._chains),
                          actor="intake")
        row.incident_id = incident.id
