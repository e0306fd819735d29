"""Late binding to the stages the console presents.

The console shows cases, intake, registry, policy, detection, reputation and
accounting, each written by another stage. Each is imported lazily: a stage
that is absent (or fails to import) makes its pages say "not available"
instead of taking the whole console down.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from datetime import date, datetime
from decimal import Decimal
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

# Each stage's public API, as (module, ...) in the order tried: a stage may
# export from its package or keep the functions in a submodule.
STAGES: dict[str, tuple[str, ...]] = {
    "cases": ("aupguard.cases.service",),
    "intake": ("aupguard.intake", "aupguard.intake.api"),
    "registry": ("aupguard.registry",),
    "policy": ("aupguard.policy",),
    "mitigate": ("aupguard.detect.mitigate", "aupguard.detect"),
    "reputation": ("aupguard.reputation", "aupguard.reputation.monitor"),
    "accounting": ("aupguard.accounting", "aupguard.accounting.report"),
    "flows": ("aupguard.flows.collector", "aupguard.flows.metrics"),
}


class StageUnavailable(Exception):
    """A stage (or one function of it) is not installed in this build."""

    def __init__(self, stage: str, what: str = "", why: str = ""):
        self.stage, self.what, self.why = stage, what, why
        name = f"{stage}.{what}" if what else stage
        super().__init__(f"the {name} feature is not available in this build" +
                         (f" ({why})" if why else ""))


def _modules(stage: str) -> list[ModuleType]:
    found, errors = [], []
    for name in STAGES[stage]:
        try:
            found.append(importlib.import_module(name))
        except ImportError as exc:
            errors.append(str(exc))
    if not found:
        log.info("stage %s unavailable: %s", stage, "; ".join(errors))
        raise StageUnavailable(stage, why=errors[0] if errors else "")
    return found


def func(stage: str, name: str):
    """A stage's public function (or constant), or StageUnavailable."""
    for mod in _modules(stage):
        fn = getattr(mod, name, None)
        if fn is not None:
            return fn
    raise StageUnavailable(stage, name)


def available(stage: str, name: str | None = None) -> bool:
    try:
        func(stage, name) if name else _modules(stage)
    except StageUnavailable:
        return False
    return True


def plain(value: Any, depth: int = 0) -> Any:
    """JSON-safe plain data from whatever a stage returns (pydantic, dataclass, ORM row)."""
    if depth > 8:
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v, depth + 1) for v in value]
    if hasattr(value, "model_dump"):
        return plain(value.model_dump(), depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, depth + 1)
    if hasattr(value, "as_dict"):
        return plain(value.as_dict(), depth + 1)
    table = getattr(value, "__table__", None)
    if table is not None:
        return plain({c.key: getattr(value, c.key, None) for c in table.columns}, depth + 1)
    if hasattr(value, "_asdict"):
        return plain(value._asdict(), depth + 1)
    if hasattr(value, "to_pylist"):  # Arrow tables and arrays
        return plain(value.to_pylist(), depth + 1)
    return str(value)
