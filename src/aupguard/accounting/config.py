"""[accounting]: the monthly per-ASN CDR report (the AUP's 10% clause)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AccountingSettings(BaseModel):
    """[accounting]: the monthly per-ASN CDR report."""

    model_config = ConfigDict(extra="forbid")

    bin_seconds: int = Field(
        300, ge=1, le=86400,
        description="Rate bin length in seconds; a flow's bytes are spread pro rata over the bins it spans.",
    )
    percentile: float = Field(
        95.0, gt=0, le=100,
        description="Percentile of the month's bins (nearest rank, zero bins included).",
    )
    direction_mode: Literal["sum", "max"] = Field(
        "sum",
        description="'sum': in+out per bin, then the percentile; 'max': the larger of the in and out percentiles.",
    )
    threshold_share: float = Field(
        0.10, gt=0, le=1, description="Share of the client's CDR above which the guarantee toward an ASN is void."
    )
    top: int = Field(20, ge=1, description="How many ASNs per client the report table shows.")
    memory_limit: str = Field(
        "6GB", description="DuckDB memory limit for the report (it spills to DATA_DIR/tmp beyond it)."
    )
    threads: int = Field(0, ge=0, description="DuckDB threads for the report (0: one per core).")
