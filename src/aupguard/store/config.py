from pydantic import BaseModel, ConfigDict


class StoreSettings(BaseModel):
    """[store]: where operational state lives."""

    model_config = ConfigDict(extra="forbid")
    # SQLAlchemy URL. Empty: SQLite (WAL) file `state.db` in the data directory.
    # PostgreSQL: "postgresql+psycopg://user:pass@127.0.0.1:5432/aupguard".
    url: str = ""
