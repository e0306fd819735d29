from pydantic import BaseModel, ConfigDict


class RoutingSettings(BaseModel):
    """[routing]: BGP RIB input (MRT files, live ExaBGP feed)."""

    model_config = ConfigDict(extra="forbid")
