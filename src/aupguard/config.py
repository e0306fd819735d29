"""The one configuration file, `aupguard.toml`, validated with pydantic.

Each stage owns its section model (``<stage>/config.py``); this module only
assembles them, finds the file (``--config`` or ``AUPGUARD_CONFIG``) and turns
validation failures into messages that name the key and what it allows.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from aupguard.accounting.config import AccountingSettings
from aupguard.bulkmail.config import BulkmailSettings
from aupguard.cases.config import CaseSettings
from aupguard.detect.config import DetectSettings
from aupguard.errors import ConfigError
from aupguard.flows.config import FlowSettings
from aupguard.intake.config import IntakeSettings
from aupguard.reputation.config import ReputationSettings
from aupguard.routing.config import RoutingSettings
from aupguard.store.config import StoreSettings
from aupguard.web.config import WebSettings

ENV_VAR = "AUPGUARD_CONFIG"
DEFAULT_NAME = "aupguard.toml"


class Settings(BaseModel):
    """The whole configuration. Every section has working loopback-only defaults."""

    model_config = ConfigDict(extra="forbid")

    # Where state.db, flow Parquet files, evidence and the outbox live.
    data_dir: Path = Path("aupguard-data")
    store: StoreSettings = StoreSettings()
    flows: FlowSettings = FlowSettings()
    routing: RoutingSettings = RoutingSettings()
    detect: DetectSettings = DetectSettings()
    intake: IntakeSettings = IntakeSettings()
    reputation: ReputationSettings = ReputationSettings()
    cases: CaseSettings = CaseSettings()
    accounting: AccountingSettings = AccountingSettings()
    bulkmail: BulkmailSettings = BulkmailSettings()
    web: WebSettings = WebSettings()

    @property
    def database_url(self) -> str:
        if self.store.url:
            return self.store.url
        return f"sqlite:///{(self.data_dir / 'state.db').resolve()}"


def _describe(error: dict) -> str:
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{key}: unknown key (check the spelling; `aupguard init` writes every allowed key)"
    allowed = ""
    ctx = error.get("ctx") or {}
    if "expected" in ctx:
        allowed = f" (allowed: {ctx['expected']})"
    got = error.get("input")
    shown = f", got {got!r}" if got is not None and not isinstance(got, dict) else ""
    return f"{key}: {error['msg']}{allowed}{shown}"


def parse_settings(data: dict, source: str = "<config>") -> Settings:
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        lines = "\n".join("  " + _describe(e) for e in exc.errors())
        raise ConfigError(f"invalid configuration in {source}:\n{lines}") from None
    return settings


def find_config(path: str | Path | None = None) -> Path | None:
    """The config file in use: explicit path, then $AUPGUARD_CONFIG, then ./aupguard.toml."""
    if path:
        return Path(path)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    here = Path(DEFAULT_NAME)
    return here if here.exists() else None


def load_settings(path: str | Path | None = None) -> Settings:
    """Load and validate the configuration; with no file, the embedded defaults."""
    found = find_config(path)
    if found is None:
        return Settings()
    if not found.exists():
        raise ConfigError(f"config file {found} does not exist (run `aupguard init` to write one)")
    try:
        data = tomllib.loads(found.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{found} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {found}: {exc.strerror}") from None
    settings = parse_settings(data, str(found))
    if not settings.data_dir.is_absolute():
        # Relative data directories are relative to the config file, not the cwd.
        settings.data_dir = (found.parent / settings.data_dir).resolve()
    return settings
