from pydantic import BaseModel, ConfigDict


class IntakeSettings(BaseModel):
    """[intake]: the abuse mailbox (SMTP listener, imports, parsers)."""

    model_config = ConfigDict(extra="forbid")
