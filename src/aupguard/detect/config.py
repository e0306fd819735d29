from pydantic import BaseModel, ConfigDict


class DetectSettings(BaseModel):
    """[detect]: detection rules, thresholds and mitigation."""

    model_config = ConfigDict(extra="forbid")
