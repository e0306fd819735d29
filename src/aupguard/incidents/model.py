"""The incident: one violation (possibly ongoing) by one client of one clause."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from aupguard.store.db import Base
from aupguard.store.types import UTCDateTime

SOURCES = ("flow", "complaint", "monitor")
STATUSES = ("active", "ended", "review")


@dataclass
class Finding:
    """One observation handed in by a producer.

    ``key`` identifies an ongoing incident: findings with the same key while the
    incident is active extend it (last_seen, counts, peak) rather than open a
    new one. Typical keys: ``"syn_flood:victim=198.51.100.7"``.
    """

    source: str                      # flow | complaint | monitor
    rule: str                        # detector or parser name: syn_flood, arf, dnsbl...
    clause_id: str                   # AUP clause broken, e.g. security.flood
    key: str
    first_seen: datetime
    last_seen: datetime
    client_id: str | None = None     # None: unattributed (goes to review)
    offender: str = ""               # address (or address:port) responsible
    victim: str = ""
    summary: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)   # measured figures vs thresholds
    evidence: list[dict[str, Any]] = field(default_factory=list)  # sample flows, evidence refs
    peak: float = 0.0                # headline figure (pps, bps, hosts...) for "peak"
    status: str = "active"


class IncidentRow(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    source: Mapped[str] = mapped_column(String(20), nullable=False)
    rule: Mapped[str] = mapped_column(String(100), nullable=False)
    clause_id: Mapped[str] = mapped_column(String(100), nullable=False)
    key: Mapped[str] = mapped_column(String(500), nullable=False, index=True)
    client_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    offender: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    victim: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    summary: Mapped[str] = mapped_column(Text, nullable=False, default="")
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    peak: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    observations: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="active")
    metrics: Mapped[Any] = mapped_column(JSON, nullable=False, default=dict)
    evidence: Mapped[Any] = mapped_column(JSON, nullable=False, default=list)
    policy_version: Mapped[str] = mapped_column(String(50), nullable=False, default="")
    case_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    def as_dict(self) -> dict[str, Any]:
        return {c.name: getattr(self, c.name) for c in self.__table__.columns}
