"""The rule catalogue: every detector, by name."""

from __future__ import annotations

from aupguard.detect.rules import abuse, flood, scan
from aupguard.detect.rules.base import STANDARD_COLUMNS, Rule, literal

ALL_RULES: dict[str, Rule] = {r.name: r for r in flood.RULES + scan.RULES + abuse.RULES}

__all__ = ["ALL_RULES", "STANDARD_COLUMNS", "Rule", "literal"]
