"""Posted AUP versions and the acceptance ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from aupguard.store.db import Base
from aupguard.store.types import UTCDateTime


class PolicyVersionRow(Base):
    __tablename__ = "policy_versions"

    version: Mapped[str] = mapped_column(String(50), primary_key=True)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    posted_by: Mapped[str] = mapped_column(String(200), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    clauses: Mapped[Any] = mapped_column(JSON, nullable=False)  # id -> {start,end,category,mechanism}


class AcceptanceRow(Base):
    """First activity of a client after a version was posted: acceptance by continued use."""

    __tablename__ = "policy_acceptance"
    __table_args__ = (UniqueConstraint("client_id", "version", name="uq_acceptance_client_version"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    version: Mapped[str] = mapped_column(String(50), nullable=False)
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    activity: Mapped[str] = mapped_column(String(50), nullable=False)  # traffic, login, api
