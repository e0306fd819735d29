from pydantic import BaseModel, ConfigDict


class ReputationSettings(BaseModel):
    """[reputation]: DNSBL monitor and SMTP relay probes."""

    model_config = ConfigDict(extra="forbid")
