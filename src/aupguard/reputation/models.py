"""Tables of the reputation stage: DNSBL listings (one row per listing episode),
check runs, and SMTP probe results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from aupguard.store.db import Base
from aupguard.store.types import UTCDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")


class DnsblListing(Base):
    """One address listed by one zone from `listed_at` until `delisted_at` (history)."""

    __tablename__ = "dnsbl_listings"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    zone: Mapped[str] = mapped_column(String(255), nullable=False)
    address: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    client_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    codes: Mapped[Any] = mapped_column(JSON, nullable=False, default=list)
    meanings: Mapped[Any] = mapped_column(JSON, nullable=False, default=list)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="listed")  # listed|delisted
    listed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    delisted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    incident_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    def as_dict(self) -> dict[str, Any]:
        return {c.name: getattr(self, c.name) for c in self.__table__.columns}


class DnsblRun(Base):
    """One `reputation check`: what was asked and how it went (errors are never 'clear')."""

    __tablename__ = "dnsbl_runs"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    client_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    zones: Mapped[Any] = mapped_column(JSON, nullable=False, default=list)
    addresses: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    queries: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    listed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    new_listings: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    delistings: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    errors: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error_samples: Mapped[Any] = mapped_column(JSON, nullable=False, default=list)


class SmtpProbe(Base):
    """One probe of one host:port with its verdict and full transcript."""

    __tablename__ = "smtp_probes"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    host: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    port: Mapped[int] = mapped_column(Integer, nullable=False)
    client_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    verdict: Mapped[str] = mapped_column(String(30), nullable=False)  # open_relay|closed|unreachable|error
    auth_offered: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    auth_required: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    accepted_variants: Mapped[Any] = mapped_column(JSON, nullable=False, default=list)
    transcript: Mapped[str] = mapped_column(Text, nullable=False, default="")
    incident_ids: Mapped[Any] = mapped_column(JSON, nullable=False, default=list)
