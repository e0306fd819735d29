"""What every stage's CLI shares: settings, the store, output helpers.

Stage CLIs live in ``aupguard/<stage>/cli.py`` and expose ``register(root)``;
they import heavy libraries (pyarrow, duckdb, matplotlib) inside commands so
``aupguard --help`` stays instant.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Any

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


class AppState:
    """Per-invocation state: the config path given on the command line."""

    def __init__(self, config_path: str | None = None):
        self.config_path = config_path
        self._settings = None
        self._store = None

    @property
    def settings(self):
        if self._settings is None:
            from aupguard.config import load_settings

            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def store(self):
        if self._store is None:
            from aupguard.store.db import open_store

            self._store = open_store(self.settings)
        return self._store


def state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    return str(value)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=_default, indent=2) + "\n")


def parse_time(value: str | None, option: str = "--at") -> datetime | None:
    """ISO-8601 time from the command line; naive times are taken as UTC."""
    if value is None:
        return None
    text = value.strip()
    if text.lower() == "now":
        return datetime.now(timezone.utc)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO-8601 time (e.g. 2026-10-01T12:00:00Z)", param_hint=option
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
