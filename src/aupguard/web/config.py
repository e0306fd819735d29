from pydantic import BaseModel, ConfigDict


class WebSettings(BaseModel):
    """[web]: the REST API and web console."""

    model_config = ConfigDict(extra="forbid")
