"""Storing findings: open, grow and end incidents."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from aupguard.incidents.model import SOURCES, Finding, IncidentRow
from aupguard.store import audit
from aupguard.store.types import utcnow

MAX_EVIDENCE = 50  # sample records kept per incident; the rest stay in the flow store


def _policy_version(session: Session, at: datetime) -> str:
    try:
        from aupguard.policy import version_at
    except ImportError:  # policy stage absent in a trimmed install
        return ""
    version = version_at(session, at)
    return version.version if version else ""


def report(session: Session, finding: Finding, actor: str = "system") -> IncidentRow:
    """Store a finding: extend the active incident with its key, or open a new one."""
    if finding.source not in SOURCES:
        raise ValueError(f"unknown incident source {finding.source!r}; use one of {SOURCES}")
    row = session.execute(
        select(IncidentRow)
        .where(IncidentRow.key == finding.key, IncidentRow.status == "active")
        .order_by(IncidentRow.id.desc()).limit(1)
    ).scalar_one_or_none()
    if row is not None and finding.status == "active":
        row.last_seen = max(row.last_seen, finding.last_seen)
        row.first_seen = min(row.first_seen, finding.first_seen)
        row.observations += 1
        if finding.peak > row.peak:
            row.peak = finding.peak
            row.metrics = dict(finding.metrics)
        if len(row.evidence) < MAX_EVIDENCE and finding.evidence:
            row.evidence = (list(row.evidence) + finding.evidence)[:MAX_EVIDENCE]
        return row
    row = IncidentRow(
        source=finding.source, rule=finding.rule, clause_id=finding.clause_id, key=finding.key,
        client_id=finding.client_id, offender=finding.offender, victim=finding.victim,
        summary=finding.summary, first_seen=finding.first_seen, last_seen=finding.last_seen,
        peak=finding.peak, observations=1, status=finding.status,
        metrics=dict(finding.metrics), evidence=finding.evidence[:MAX_EVIDENCE],
        policy_version=_policy_version(session, finding.first_seen), created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    audit.record(session, actor, "incident.open", "incident", row.id,
                 after={"rule": row.rule, "clause": row.clause_id, "client": row.client_id,
                        "offender": row.offender, "victim": row.victim})
    return row


def end_quiet(session: Session, now: datetime, hold: timedelta,
              source: str | None = None) -> list[IncidentRow]:
    """End active incidents not seen for `hold`; returns the ones ended."""
    query = select(IncidentRow).where(IncidentRow.status == "active",
                                      IncidentRow.last_seen < now - hold)
    if source:
        query = query.where(IncidentRow.source == source)
    ended = list(session.execute(query).scalars())
    for row in ended:
        row.status = "ended"
        audit.record(session, "system", "incident.end", "incident", row.id,
                     before={"status": "active"}, after={"status": "ended"})
    return ended


def list_incidents(session: Session, *, status: str | None = None, client_id: str | None = None,
                   clause_id: str | None = None, source: str | None = None,
                   since: datetime | None = None, limit: int = 1000) -> list[IncidentRow]:
    query = select(IncidentRow).order_by(IncidentRow.last_seen.desc()).limit(limit)
    if status:
        query = query.where(IncidentRow.status == status)
    if client_id:
        query = query.where(IncidentRow.client_id == client_id)
    if clause_id:
        query = query.where(IncidentRow.clause_id == clause_id)
    if source:
        query = query.where(IncidentRow.source == source)
    if since:
        query = query.where(IncidentRow.last_seen >= since)
    return list(session.execute(query).scalars())


def get(session: Session, incident_id: int) -> IncidentRow | None:
    return session.get(IncidentRow, incident_id)
