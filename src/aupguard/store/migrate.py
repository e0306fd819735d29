"""Alembic, driven from code: one branch per stage, all upgraded to `heads`.

Each stage keeps its revisions in ``aupguard/<stage>/migrations/``. The first
revision of a stage has ``down_revision = None`` and ``branch_labels =
("<stage>",)``, so stages evolve their tables without touching one another's
history. Tables never carry foreign keys into another stage's tables.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

PACKAGE = Path(__file__).resolve().parent.parent


def version_locations() -> list[str]:
    return sorted(str(p) for p in PACKAGE.glob("*/migrations") if any(p.glob("*.py")))


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "alembic"))
    cfg.set_main_option("version_locations", " ".join(version_locations()))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    command.upgrade(alembic_config(engine), "heads")
