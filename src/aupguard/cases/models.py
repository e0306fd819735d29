"""Tables of the cases stage: cases, their timeline, enforcement orders,
mandatory reports, repeat-infringer strikes, evidence links and legal holds.

No foreign keys into other stages' tables (incidents, clients): plain id columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from aupguard.store.db import Base
from aupguard.store.types import UTCDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")

OPEN_STATUSES = ("open", "notified", "awaiting_client", "escalated", "restricted", "suspended")
STATUSES = OPEN_STATUSES + ("resolved", "terminated", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")


class CaseRow(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    clause_id: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="open", index=True)
    owner: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    priority: Mapped[str] = mapped_column(String(10), nullable=False, default="normal")
    title: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    restricted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ladder_step: Mapped[int] = mapped_column(Integer, nullable=False, default=-1)
    last_notice_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    merged_into: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class CaseEventRow(Base):
    """One line of a case's timeline (the audit log holds the tamper-evident copy)."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), nullable=False, index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(50), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False, default="")
    data: Mapped[Any] = mapped_column(JSON, nullable=False, default=dict)


class EnforcementOrderRow(Base):
    """A restriction, suspension or termination decided on a case."""

    __tablename__ = "enforcement_orders"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), nullable=False, index=True)
    client_id: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(30), nullable=False)  # restriction|suspension|termination
    action: Mapped[str] = mapped_column(String(50), nullable=False)  # port25-block, rate-limit, ...
    params: Mapped[Any] = mapped_column(JSON, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="active")
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    issued_by: Mapped[str] = mapped_column(String(200), nullable=False)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class MandatoryReportRow(Base):
    """A report to an authority (e.g. CSAM to the national hotline / law enforcement)."""

    __tablename__ = "mandatory_reports"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), nullable=False, index=True)
    authority: Mapped[str] = mapped_column(String(200), nullable=False)
    report_id: Mapped[str] = mapped_column(String(200), nullable=False)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(200), nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class StrikeRow(Base):
    """Repeat-infringer ledger: one strike per copyright notice, per client (not per address)."""

    __tablename__ = "strikes"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    case_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    incident_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, unique=True)
    clause_id: Mapped[str] = mapped_column(String(100), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    reference: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    withdrawn_reason: Mapped[str] = mapped_column(Text, nullable=False, default="")


class CaseEvidenceRow(Base):
    """Evidence (by SHA-256 in the content-addressed store) attached to a case."""

    __tablename__ = "case_evidence"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), nullable=False, index=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(50), nullable=False)
    incident_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    added_by: Mapped[str] = mapped_column(String(200), nullable=False)


class LegalHoldRow(Base):
    """Evidence that retention must not delete; until=None means indefinitely."""

    __tablename__ = "legal_holds"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    case_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    start: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)
