"""Clients (with their reseller parent and contract) and their address assignments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from aupguard.store.db import Base
from aupguard.store.types import UTCDateTime


class ClientRow(Base):
    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(300), nullable=False)
    parent_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    abuse_email: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    escalation_email: Mapped[str] = mapped_column(String(300), nullable=False, default="")
    emails: Mapped[Any] = mapped_column(JSON, nullable=False, default=list)
    cdr_bps: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    contract_start: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    contract_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    mail_servers: Mapped[Any] = mapped_column(JSON, nullable=False, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class AssignmentRow(Base):
    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100), ForeignKey("clients.id"),
                                           nullable=False, index=True)
    prefix: Mapped[str] = mapped_column(String(60), nullable=False, index=True)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    port_lo: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_hi: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class Client(BaseModel):
    """A client of the ISP; `parent_id` is its reseller (the AUP makes resellers answer
    for their end users, so notices go up the chain)."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")
    name: str = Field(min_length=1, max_length=300)
    parent_id: str | None = None
    abuse_email: str = ""
    escalation_email: str = ""
    emails: list[str] = Field(default_factory=list)
    cdr_bps: int | None = Field(default=None, ge=0, description="Committed Data Rate, bit/s")
    contract_start: datetime | None = None
    contract_end: datetime | None = None
    mail_servers: list[str] = Field(default_factory=list)


class Assignment(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int | None = None
    client_id: str
    prefix: str
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    port_lo: int | None = Field(default=None, ge=0, le=65535)
    port_hi: int | None = Field(default=None, ge=0, le=65535)
