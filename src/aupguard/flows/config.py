from pydantic import BaseModel, ConfigDict


class FlowSettings(BaseModel):
    """[flows]: flow collection and the Parquet flow store."""

    model_config = ConfigDict(extra="forbid")
