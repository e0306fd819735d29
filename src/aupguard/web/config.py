"""[web]: the REST API and the web console."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class WebSettings(BaseModel):
    """[web]: the REST API and web console."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Address `aupguard web` listens on (loopback by default).")
    port: int = Field(8080, ge=1, le=65535, description="TCP port of the console and the REST API.")
    secret_key: str = Field(
        "", description="Key that signs session cookies and CSRF tokens. Empty: a random key is\n"
                        "generated once and kept in <data_dir>/web-secret.key (mode 0600).")
    session_hours: int = Field(12, ge=1, le=720,
                               description="Hours a console login stays valid.")
    cookie_secure: bool = Field(
        False, description="Mark cookies Secure (set true when the console is served over HTTPS).")
    login_attempts_per_minute: int = Field(
        10, ge=1, description="Failed logins allowed per user name per minute before logins are refused.")
    max_note_chars: int = Field(20_000, ge=100,
                                description="Longest note or client reply accepted from a form.")
