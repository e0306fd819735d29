"""Tables of the detect stage: threat-feed entries and BGP mitigations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aupguard.store.db import Base
from aupguard.store.types import UTCDateTime

MITIGATION_STATUSES = ("pending", "announced", "withdrawn", "rejected")


class FeedEntry(Base):
    """One listed address or prefix from a threat feed (C2 servers, DROP blocks)."""

    __tablename__ = "detect_feed_entries"
    __table_args__ = (UniqueConstraint("feed", "prefix", name="uq_detect_feed_entries_feed_prefix"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    feed: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    format: Mapped[str] = mapped_column(String(20), nullable=False)
    prefix: Mapped[str] = mapped_column(String(60), nullable=False)
    label: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class Mitigation(Base):
    """A blackhole route or FlowSpec rule for one address, from proposal to withdrawal."""

    __tablename__ = "detect_mitigations"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    rule: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    client_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    prefix: Mapped[str] = mapped_column(String(60), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)          # blackhole | flowspec
    route: Mapped[str] = mapped_column(Text, nullable=False)               # ExaBGP API text
    status: Mapped[str] = mapped_column(String(20), nullable=False, index=True)
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    detail: Mapped[Any] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    announced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_attack_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    def as_dict(self) -> dict[str, Any]:
        return {c.name: getattr(self, c.name) for c in self.__table__.columns}
