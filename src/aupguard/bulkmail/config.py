"""[bulkmail]: opt-in records, suppression lists, spam traps."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BulkmailSettings(BaseModel):
    """[bulkmail]: opt-in records, suppression lists, spam traps."""

    model_config = ConfigDict(extra="forbid")

    hash_suppressions: bool = Field(
        default=False,
        description="Store new suppression entries as SHA-256 of the normalised address or "
                    "domain instead of the clear text (screening works on both).")
    optin_request_days: int = Field(default=14, ge=1, le=365,
                                    description="Default deadline, in days, for a client to "
                                                "produce opt-in records on request.")
    trap_addresses: list[str] = Field(default_factory=list,
                                      description="Spam-trap addresses (never subscribed by anyone).")
    trap_domains: list[str] = Field(default_factory=list,
                                    description="Domains whose every address is a spam trap.")
    max_header_bytes: int = Field(default=16384, ge=256,
                                  description="Confirming-message headers kept per opt-in record "
                                              "(longer ones are cut and flagged).")
