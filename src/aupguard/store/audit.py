"""The append-only, hash-chained audit log.

Every state change in aupguard (who, when, what, before/after) is appended
here. Each row carries the SHA-256 of the previous row's hash and its own
canonical content, so a modified or deleted row breaks the chain and
`aupguard audit verify` finds it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, Text, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from aupguard.store.db import Base
from aupguard.store.types import UTCDateTime, utcnow

GENESIS = "0" * 64


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(100), nullable=False)
    entity: Mapped[str] = mapped_column(String(100), nullable=False)
    entity_id: Mapped[str] = mapped_column(String(200), nullable=False)
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")


def _canonical(value: Any) -> Any:
    """JSON-safe form of a before/after value (datetimes, sets, paths...)."""
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def entry_hash(prev_hash: str, at: datetime, actor: str, action: str, entity: str,
               entity_id: str, before: Any, after: Any, note: str) -> str:
    body = json.dumps(
        [prev_hash, at.isoformat(timespec="microseconds"), actor, action, entity, entity_id,
         before, after, note],
        sort_keys=True, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def record(session: Session, actor: str, action: str, entity: str, entity_id: Any,
           before: Any = None, after: Any = None, note: str = "",
           at: datetime | None = None) -> AuditEntry:
    """Append one entry in the caller's transaction (it commits with the change it audits)."""
    # The chain's tail is read once per transaction and then carried in session.info:
    # bulk work (an intake batch audits thousands of changes) would otherwise pay a
    # query and a flush per entry. Entries of one mapper are inserted in add() order.
    transaction = session.get_transaction()
    cached = session.info.get("audit_tail")
    # A savepoint rolled back since expunges its entries: then read the tail again.
    if cached is not None and cached[0] is transaction and cached[1] in session:
        prev = cached[1].hash
    else:
        if session.get_bind().dialect.name == "postgresql":
            # Serialise writers so two transactions never chain onto the same tail.
            session.execute(text("SELECT pg_advisory_xact_lock(4242001)"))
        last = session.execute(
            select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)).scalar()
        prev = last or GENESIS
    at = at or utcnow()
    before, after = _canonical(before), _canonical(after)
    entry = AuditEntry(at=at, actor=actor, action=action, entity=entity, entity_id=str(entity_id),
                       before=before, after=after, prev_hash=prev, note=note,
                       hash=entry_hash(prev, at, actor, action, entity, str(entity_id),
                                       before, after, note))
    session.add(entry)
    session.info["audit_tail"] = (transaction, entry)
    return entry


@dataclass
class VerifyResult:
    checked: int
    broken_at: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify(session: Session) -> VerifyResult:
    """Walk the chain from the first entry; report the first row that does not fit."""
    prev = GENESIS
    count = 0
    for row in session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars():
        count += 1
        if row.prev_hash != prev:
            return VerifyResult(count, row.id, "previous-hash link broken (row deleted or inserted)")
        expected = entry_hash(row.prev_hash, row.at, row.actor, row.action, row.entity,
                              row.entity_id, row.before, row.after, row.note)
        if expected != row.hash:
            return VerifyResult(count, row.id, "content does not match its hash (row modified)")
        prev = row.hash
    return VerifyResult(count)
