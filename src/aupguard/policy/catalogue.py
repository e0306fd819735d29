"""Clause catalogues: which span of an AUP text each clause id is.

A catalogue maps clause ids to a ``start`` and ``end`` phrase (verbatim from
the text) plus a category and enforcement mechanism. Resolving it against the
text gives exact character offsets, so a clause can always be shown as the
words the client agreed to.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from aupguard.errors import InputError

SHIPPED_VERSION = "2014"


@dataclass(frozen=True)
class ClauseSpec:
    id: str
    start: int            # character offsets into the version's text
    end: int
    category: str
    mechanism: str


@cache
def shipped_text() -> str:
    return resources.files("aupguard.policy").joinpath("aup-2014.txt").read_text(encoding="utf-8")


@cache
def _shipped_markers() -> dict[str, dict[str, str]]:
    raw = resources.files("aupguard.policy").joinpath("clauses-2014.toml").read_text(encoding="utf-8")
    return tomllib.loads(raw)["clauses"]


def shipped_markers() -> dict[str, dict[str, str]]:
    """A fresh copy each call: callers may edit it to build a new version's map."""
    return {k: dict(v) for k, v in _shipped_markers().items()}


def resolve(text: str, markers: dict[str, dict[str, Any]], source: str = "catalogue") -> list[ClauseSpec]:
    """Turn start/end phrases into spans; every clause must be found, or nothing is."""
    specs, missing = [], []
    for clause_id, m in markers.items():
        if "start" not in m or "end" not in m:
            missing.append(f"{clause_id}: needs both 'start' and 'end' phrases")
            continue
        start = text.find(m["start"])
        end = text.find(m["end"], start) if start >= 0 else -1
        if start < 0 or end < 0:
            which = "start" if start < 0 else "end"
            missing.append(f"{clause_id}: {which} phrase {m[which]!r} not found in the text")
            continue
        specs.append(ClauseSpec(clause_id, start, end + len(m["end"]),
                                m.get("category", clause_id.split(".")[0]), m.get("mechanism", "")))
    if missing:
        raise InputError(f"{source}: clauses do not match the text:\n  " + "\n  ".join(missing))
    return specs


@cache
def _catalogue() -> tuple[ClauseSpec, ...]:
    return tuple(resolve(shipped_text(), _shipped_markers(), "shipped catalogue"))


def shipped_catalogue() -> list[ClauseSpec]:
    return list(_catalogue())


CLAUSE_IDS: tuple[str, ...] = tuple(shipped_markers())
