from pydantic import BaseModel, ConfigDict


class AccountingSettings(BaseModel):
    """[accounting]: the monthly per-ASN CDR report."""

    model_config = ConfigDict(extra="forbid")
