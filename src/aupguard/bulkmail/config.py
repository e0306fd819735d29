from pydantic import BaseModel, ConfigDict


class BulkmailSettings(BaseModel):
    """[bulkmail]: opt-in records, suppression lists, spam traps."""

    model_config = ConfigDict(extra="forbid")
