"""Write a commented example `aupguard.toml` from the settings models themselves.

Generated rather than hand-kept, so every key any stage adds shows up with its
default and its description (``Field(description=...)``) automatically.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

from pydantic import BaseModel

from aupguard.config import Settings


def _toml_value(value) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, Path)):
        return json.dumps(str(value))
    if isinstance(value, (list, tuple)):
        parts = [_toml_value(v) for v in value]
        return None if any(p is None for p in parts) else "[" + ", ".join(parts) + "]"
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            rendered = _toml_value(v)
            if rendered is None:
                return None
            parts.append(f"{json.dumps(str(k))} = {rendered}")
        return "{ " + ", ".join(parts) + " }"
    return None


def _emit(model: BaseModel, path: str, out: list[str]) -> None:
    cls = type(model)
    scalars, sections = [], []
    for name, field in cls.model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            sections.append((name, value, field))
        else:
            scalars.append((name, value, field))
    for name, value, field in scalars:
        if field.description:
            for line in field.description.splitlines():
                out.append(f"# {line}")
        rendered = _toml_value(value)
        if rendered is None:
            out.append(f"# {name} = (see documentation)")
        elif value in (None, "", [], {}):
            out.append(f"# {name} = {rendered}")
        else:
            out.append(f"# {name} = {rendered}")
    for name, value, field in sections:
        sub = f"{path}.{name}" if path else name
        out.append("")
        doc = (type(value).__doc__ or "").strip().splitlines()
        for line in doc[:3]:
            out.append(f"# {line.strip()}")
        out.append(f"[{sub}]")
        _emit(value, sub, out)


def example_config(data_dir: str = "aupguard-data") -> str:
    out = [
        "# aupguard configuration. Every key is shown commented out with its default;",
        "# uncomment and change what you need. Every default talks to loopback or to nothing.",
        f"data_dir = {json.dumps(data_dir)}",
    ]
    settings = Settings()
    _emit(settings, "", body := [])
    out.extend(line for line in body if not line.startswith("# data_dir"))
    return "\n".join(out) + "\n"
