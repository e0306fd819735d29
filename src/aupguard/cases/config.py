"""[cases]: cases, notices, escalation ladder, legal duties, evidence, outbox delivery."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_LADDER = ["notice", "warning", "restriction", "suspension", "termination"]
STEPS = tuple(DEFAULT_LADDER)
RESTRICTIONS = ("port25-block", "rate-limit")


class CaseSettings(BaseModel):
    """[cases]: cases, notices, escalation, evidence."""

    model_config = ConfigDict(extra="forbid")

    grouping_window_hours: int = Field(
        72, ge=0,
        description="Incidents of one client and clause within this many hours of the case's\n"
                    "last activity join that case instead of opening a new one.")
    triage_hours: int = Field(
        24, ge=1, description="Hours an analyst has to triage a new case (its first due date).")
    auto_first_notice: bool = Field(
        False, description="Send the first notice automatically when triage time runs out\n"
                           "(false: a person sends the first notice; later steps still run on deadlines).")
    auto_escalate: bool = Field(
        True, description="Take the next ladder step automatically when the client's deadline passes.")
    default_ladder: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LADDER),
        description="Escalation ladder for clauses without their own: steps from\n"
                    "notice, warning, restriction, suspension, termination.")
    ladders: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "content.csam": ["notice", "suspension", "termination"],
            "traffic.asn-cdr": ["notice"],
            "general.changes": ["notice"],
        },
        description="Escalation ladder per clause id (overrides default_ladder).")
    step_deadline_hours: dict[str, int] = Field(
        default_factory=lambda: {"notice": 72, "warning": 48, "restriction": 72,
                                 "suspension": 168, "termination": 0},
        description="Hours the client has to act after each ladder step before the next one.")
    restriction_kind: dict[str, str] = Field(
        default_factory=lambda: {"mail.spam": "port25-block", "mail.relay": "port25-block",
                                 "mail.roaming-auth": "port25-block", "mail.unwanted": "port25-block",
                                 "mail.purchased-lists": "port25-block", "mail.malware": "port25-block",
                                 "security.flood": "rate-limit", "security.scan": "rate-limit"},
        description="Enforcement order a restriction step issues, per clause\n"
                    "(port25-block or rate-limit; others get default_restriction).")
    default_restriction: str = Field("rate-limit", description="Restriction for unlisted clauses.")
    rate_limit_bps: int = Field(10_000_000, ge=1, description="Rate a rate-limit order imposes (bits/s).")
    restricted_clauses: list[str] = Field(
        default_factory=lambda: ["content.csam"],
        description="Clauses whose cases only the restricted (legal) role sees; their evidence is\n"
                    "never forwarded or shown, and they cannot close without a mandatory report.")
    legal_hold_days: int = Field(
        365, ge=365, description="Evidence of a restricted case stays under legal hold at least this\n"
                                 "many days after the mandatory report (overrides retention).")
    evidence_retention_days: int = Field(
        730, ge=0, description="Evidence older than this is deleted by retention unless held (0: keep forever).")
    strike_clauses: list[str] = Field(
        default_factory=lambda: ["lawful.ip"],
        description="Clauses whose incidents count as repeat-infringer strikes against the client.")
    strike_window_days: int = Field(365, ge=1, description="Strikes older than this no longer count.")
    strike_warning_threshold: int = Field(3, ge=1, description="Strikes that put a client on final warning.")
    strike_termination_threshold: int = Field(
        5, ge=1, description="Strikes that make aupguard recommend termination (repeat-infringer policy).")
    redact_complainant: bool = Field(
        True, description="Redact the complainant's personal data (addresses, phone numbers,\n"
                          "names in headers) from evidence excerpts in notices.")
    excerpt_chars: int = Field(4000, ge=200, le=100_000,
                               description="Longest evidence excerpt quoted in a notice.")
    template_dir: str = Field(
        "", description="Directory of notice templates (<clause>.txt.j2) overriding the shipped ones.")
    from_address: str = Field("abuse@localhost", description="Sender of notices.")
    reply_domain: str = Field(
        "localhost", description="Domain of per-case reply addresses (abuse+case-<id>-<mac>@domain).")
    reply_local_part: str = Field("abuse", description="Local part before +case-... in reply addresses.")
    secret_key: str = Field(
        "", description="Key for reply-address MACs, client links and export HMAC signatures\n"
                        "(empty: a random key generated once in the data directory).")
    client_link_base: str = Field(
        "http://127.0.0.1:8080/self-help/", description="Base URL of the client self-help link.")
    client_link_days: int = Field(30, ge=1, description="Days a client self-help link stays valid.")
    smtp_enabled: bool = Field(
        False, description="Deliver the outbox through the SMTP relay (off until configured).")
    smtp_host: str = Field("127.0.0.1", description="SMTP relay host.")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP relay port.")
    smtp_starttls: bool = Field(False, description="Use STARTTLS with the relay.")
    smtp_username: str = Field("", description="SMTP AUTH user (empty: no authentication).")
    smtp_password: str = Field("", description="SMTP AUTH password.")
    smtp_timeout_seconds: float = Field(10.0, gt=0, description="Timeout of one SMTP conversation.")
    delivery_max_attempts: int = Field(8, ge=1, description="Attempts before a message is marked failed.")
    delivery_backoff_seconds: int = Field(
        60, ge=1, description="First retry delay; doubles after each failed attempt.")

    @model_validator(mode="after")
    def _check_ladders(self) -> "CaseSettings":
        for name, ladder in [("default_ladder", self.default_ladder),
                             *((f"ladders.{k}", v) for k, v in self.ladders.items())]:
            if not ladder:
                raise ValueError(f"{name} is empty; give at least one step of {', '.join(STEPS)}")
            unknown = [step for step in ladder if step not in STEPS]
            if unknown:
                raise ValueError(f"{name}: unknown step(s) {unknown}; use {', '.join(STEPS)}")
        for clause, kind in [*self.restriction_kind.items(), ("default_restriction",
                                                               self.default_restriction)]:
            if kind not in RESTRICTIONS:
                raise ValueError(f"restriction for {clause}: {kind!r}; use {' or '.join(RESTRICTIONS)}")
        return self
