from pydantic import BaseModel, ConfigDict


class CaseSettings(BaseModel):
    """[cases]: cases, notices, escalation, evidence."""

    model_config = ConfigDict(extra="forbid")
