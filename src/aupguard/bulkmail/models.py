"""Tables of the bulkmail stage: suppressions, opt-in records and requests, trap hits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aupguard.store.db import Base
from aupguard.store.types import UTCDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")
GLOBAL = "*"   # scope of the global suppression list (client ids never contain '*')


class Suppression(Base):
    """An address or domain that must not be mailed, globally or for one client."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("scope", "kind", "value", name="uq_suppressions_entry"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    scope: Mapped[str] = mapped_column(String(100), nullable=False)         # '*' or a client id
    kind: Mapped[str] = mapped_column(String(10), nullable=False)           # address | domain
    value: Mapped[str] = mapped_column(String(320), nullable=False)         # normalised or sha256 hex
    hashed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    source: Mapped[str] = mapped_column(String(30), nullable=False)         # fbl|unsubscribe|manual|import
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    suppressed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    # The same instant as epoch milliseconds: screening compares times in DuckDB.
    suppressed_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)


class OptinRecord(Base):
    """One subscription a bulk sender holds, with its confirmation event."""

    __tablename__ = "optin_records"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    address: Mapped[str] = mapped_column(String(320), nullable=False, index=True)
    subscribed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False, default="")
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    confirm_from: Mapped[str] = mapped_column(String(400), nullable=False, default="")
    confirm_headers: Mapped[Any] = mapped_column(JSON, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(20), nullable=False)         # verified|unverified|forged
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    batch: Mapped[str] = mapped_column(String(100), nullable=False, default="")

    def as_dict(self) -> dict[str, Any]:
        return {c.name: getattr(self, c.name) for c in self.__table__.columns}


class OptinRequest(Base):
    """A demand that a client produce the opt-in records of an address by a deadline."""

    __tablename__ = "optin_requests"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    address: Mapped[str] = mapped_column(String(320), nullable=False)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="open")  # open|answered|escalated
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answer: Mapped[str] = mapped_column(Text, nullable=False, default="")
    outcome: Mapped[str] = mapped_column(String(20), nullable=False, default="")    # verified|unverified|forged|none
    ref: Mapped[str] = mapped_column(String(200), nullable=False, default="")       # e.g. case:12
    incident_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    outbox_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    def as_dict(self) -> dict[str, Any]:
        return {c.name: getattr(self, c.name) for c in self.__table__.columns}


class TrapHit(Base):
    __tablename__ = "trap_hits"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    trap_address: Mapped[str] = mapped_column(String(320), nullable=False)
    client_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    source: Mapped[str] = mapped_column(String(30), nullable=False)         # arf|spamcop|manual...
    offender: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    ref: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    incident_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ClientIndicator(Base):
    """A standing signal about a client, e.g. 'purchased_list' raised by spam-trap hits."""

    __tablename__ = "client_indicators"
    __table_args__ = (UniqueConstraint("client_id", "indicator", name="uq_client_indicator"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100), nullable=False)
    indicator: Mapped[str] = mapped_column(String(50), nullable=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
