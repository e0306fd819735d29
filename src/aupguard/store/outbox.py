"""The outbox: every mail aupguard sends is queued here first.

Policy change notices, case notices, acknowledgements to reporters and
requests for missing information all go through the outbox, so nothing is
sent twice or lost on a crash. ``cases`` owns delivery (SMTP relay, retries).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from aupguard.store.db import Base
from aupguard.store.types import UTCDateTime, utcnow


class OutboxMessage(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    kind: Mapped[str] = mapped_column(String(50), nullable=False)  # policy-change, notice, ack...
    client_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    to_addrs: Mapped[Any] = mapped_column(JSON, nullable=False)
    subject: Mapped[str] = mapped_column(String(500), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    headers: Mapped[Any] = mapped_column(JSON, nullable=False, default=dict)
    ref: Mapped[str] = mapped_column(String(200), nullable=False, default="")  # e.g. case:12
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="queued")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str] = mapped_column(Text, nullable=False, default="")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


def enqueue(session: Session, *, kind: str, to: list[str], subject: str, body: str,
            client_id: str | None = None, headers: dict[str, str] | None = None,
            ref: str = "") -> OutboxMessage:
    message = OutboxMessage(created_at=utcnow(), kind=kind, client_id=client_id,
                            to_addrs=list(to), subject=subject, body=body,
                            headers=dict(headers or {}), ref=ref, status="queued")
    session.add(message)
    session.flush()
    return message


def queued(session: Session, kind: str | None = None, limit: int = 1000) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.status == "queued").order_by(OutboxMessage.id)
    if kind:
        query = query.where(OutboxMessage.kind == kind)
    return list(session.execute(query.limit(limit)).scalars())
