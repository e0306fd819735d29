"""[intake]: the abuse mailbox (SMTP listener, imports, IMAP polling, parsers, reporters)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ReporterRule(BaseModel):
    """How aupguard treats one reporter (matched on the sender address or its domain)."""

    model_config = ConfigDict(extra="forbid")

    match: str = Field(description="Sender address (abuse@example.net) or domain (example.net, "
                       "matches subdomains too) this rule applies to.")
    trust: int = Field(default=50, ge=0, le=100,
                       description="Trust level 0-100; reports at or above intake.auto_trust "
                       "become incidents without waiting for review.")
    acknowledge: bool = Field(default=True, description="Send an acknowledgement with a "
                              "reference number (feedback loops do not want one).")
    name: str = Field(default="", description="Display name for the reporter.")


class IntakeSettings(BaseModel):
    """[intake]: the abuse mailbox (SMTP listener, imports, parsers)."""

    model_config = ConfigDict(extra="forbid")

    listen_host: str = Field(default="127.0.0.1", description="Address the SMTP listener binds "
                             "(loopback by default; 0.0.0.0 to receive from the MX).")
    listen_port: int = Field(default=2525, ge=0, le=65535,
                             description="TCP port of the SMTP listener (0 = pick a free port).")
    hostname: str = Field(default="aupguard.localhost",
                          description="Name the listener announces in its greeting.")
    addresses: list[str] = Field(default=["abuse@localhost"],
                                 description="Recipient addresses accepted (case-insensitive); "
                                 "anything else gets 550: the listener never relays.")
    max_message_bytes: int = Field(default=25 * 1024 * 1024, ge=1024,
                                   description="Largest message accepted; bigger ones get 552.")
    tls_cert: str = Field(default="", description="PEM certificate for STARTTLS (empty: no "
                          "STARTTLS offered).")
    tls_key: str = Field(default="", description="PEM private key for STARTTLS.")
    imap_host: str = Field(default="", description="IMAP server to poll (empty: no polling).")
    imap_port: int = Field(default=993, ge=1, le=65535, description="IMAP port.")
    imap_ssl: bool = Field(default=True, description="Use IMAP over TLS (imaps).")
    imap_user: str = Field(default="", description="IMAP login.")
    imap_password: str = Field(default="", description="IMAP password.")
    imap_folder: str = Field(default="INBOX", description="Mailbox polled.")
    imap_poll_seconds: int = Field(default=60, ge=5, description="Seconds between IMAP polls.")
    shadowserver_catalogue: str = Field(
        default="", description="Path to Shadowserver's reports.json (report_schema repository). "
        "Empty: the built-in table of the common report types.")
    xarf_schema_dir: str = Field(default="", description="Directory of XARF v4 JSON schemas; "
                                 "empty: the copy shipped with aupguard (MIT).")
    max_part_bytes: int = Field(default=10 * 1024 * 1024, ge=1024,
                                description="Largest decoded MIME part parsed; bigger parts are "
                                "kept raw and recorded as an error.")
    max_unzipped_bytes: int = Field(default=50 * 1024 * 1024, ge=1024,
                                    description="Cap on the total uncompressed size of a zip "
                                    "attachment (zip-bomb guard).")
    max_zip_ratio: int = Field(default=200, ge=2, description="Largest compression ratio "
                               "accepted for a zip member (zip-bomb guard).")
    max_mime_depth: int = Field(default=20, ge=2, description="Deepest MIME nesting walked.")
    max_events_per_message: int = Field(default=100000, ge=1, description="Events kept per "
                                        "message; the rest are counted as an error.")
    excerpt_chars: int = Field(default=2000, ge=100,
                               description="Evidence excerpt length stored per event.")
    dedupe_window_hours: int = Field(default=24, ge=0, description="The same event (reporter, "
                                     "address, port, category) within this window is counted "
                                     "once.")
    time_tolerance_hours: int = Field(default=72, ge=0, description="An event whose time is "
                                      "only known to within more than this goes to review.")
    auto_trust: int = Field(default=30, ge=0, le=100, description="Trust at or above which an "
                            "attributed event opens an incident without review.")
    default_trust: int = Field(default=50, ge=0, le=100,
                               description="Trust of reporters not listed in intake.reporters.")
    answer_auto_submitted: bool = Field(
        default=True, description="Acknowledge complaints marked Auto-Submitted too (most "
        "abuse reports are generated; RFC 3834 advises against auto-replies, so list the "
        "reporters that want none in intake.reporters with acknowledge = false).")
    ack_from: str = Field(default="abuse@localhost",
                          description="From address of acknowledgements and requests.")
    reporters: list[ReporterRule] = Field(
        default=[
            ReporterRule(match="arf.mail.yahoo.com", acknowledge=False, trust=70, name="Yahoo FBL"),
            ReporterRule(match="aol.net", acknowledge=False, trust=70, name="AOL FBL"),
            ReporterRule(match="senderscore.net", acknowledge=False, trust=70,
                         name="Validity FBL"),
            ReporterRule(match="fbl.cox.net", acknowledge=False, trust=70, name="Cox FBL"),
            ReporterRule(match="fbl.zoho.com", acknowledge=False, trust=70, name="Zoho FBL"),
            ReporterRule(match="hotmail.com", acknowledge=False, trust=70, name="Microsoft JMRP"),
            ReporterRule(match="reports.spamcop.net", acknowledge=False, trust=60,
                         name="SpamCop"),
            ReporterRule(match="shadowserver.org", acknowledge=False, trust=80,
                         name="Shadowserver"),
        ],
        description="Per-reporter rules (trust, acknowledgement); first match wins.")
