"""Intake tables: received messages and the events parsed from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from aupguard.store.db import Base
from aupguard.store.types import UTCDateTime

MESSAGE_STATUSES = ("parsed", "partial", "failed", "duplicate", "empty")
EVENT_STATUSES = ("attributed", "review", "dismissed", "duplicate")


class MessageRow(Base):
    """One received complaint; the raw bytes live content-addressed under the data dir."""

    __tablename__ = "intake_messages"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    reference: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    raw_ref: Mapped[str] = mapped_column(String(300), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    source: Mapped[str] = mapped_column(String(30), nullable=False, default="smtp")
    reporter: Mapped[str] = mapped_column(String(254), nullable=False, default="", index=True)
    message_id: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    subject: Mapped[str] = mapped_column(String(1000), nullable=False, default="")
    parser: Mapped[str] = mapped_column(String(40), nullable=False, default="")
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="parsed")
    error: Mapped[str] = mapped_column(Text, nullable=False, default="")
    trust: Mapped[int] = mapped_column(Integer, nullable=False, default=50)
    event_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    duplicate_of: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    def as_dict(self) -> dict[str, Any]:
        return {c.name: getattr(self, c.name) for c in self.__table__.columns}


class EventRow(Base):
    """One reported occurrence, attributed to a client or waiting in the review queue."""

    __tablename__ = "intake_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    message_id: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    ip: Mapped[str | None] = mapped_column(String(45), nullable=True, index=True)
    port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    time_uncertainty: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    category: Mapped[str] = mapped_column(String(40), nullable=False)
    clause_id: Mapped[str] = mapped_column(String(100), nullable=False)
    parser: Mapped[str] = mapped_column(String(40), nullable=False)
    reporter: Mapped[str] = mapped_column(String(254), nullable=False, default="")
    url: Mapped[str] = mapped_column(Text, nullable=False, default="")
    domain: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    excerpt: Mapped[str] = mapped_column(Text, nullable=False, default="")
    extra: Mapped[Any] = mapped_column(JSON, nullable=False, default=dict)
    client_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    reseller_chain: Mapped[Any] = mapped_column(JSON, nullable=False, default=list)
    candidates: Mapped[Any] = mapped_column(JSON, nullable=False, default=list)
    status: Mapped[str] = mapped_column(String(20), nullable=False, index=True)
    review_reason: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    incident_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    duplicate_of: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    dedupe_key: Mapped[str] = mapped_column(String(500), nullable=False, default="", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    def as_dict(self) -> dict[str, Any]:
        return {c.name: getattr(self, c.name) for c in self.__table__.columns}
