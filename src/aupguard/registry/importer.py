"""`aupguard clients import FILE.csv|.json`: all or nothing, errors with line numbers.

CSV columns (header row required; one row per assignment, client fields may be
repeated or left blank on later rows of the same client):

    client_id, name, parent_id, abuse_email, escalation_email, emails,
    cdr_bps, contract_start, contract_end, mail_servers,
    prefix, valid_from, valid_to, port_lo, port_hi

``emails`` and ``mail_servers`` hold several values separated by ``;``. Times
are ISO 8601 with a zone (``2026-01-01T00:00:00Z``). A row without ``prefix``
only defines the client. JSON: ``{"clients": [{...client fields...,
"assignments": [{"prefix": ..., "valid_from": ..., ...}]}]}``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from aupguard.errors import InputError
from aupguard.registry.models import Client
from aupguard.registry.service import add_assignment, add_client, normalise_prefix

CLIENT_FIELDS = ["client_id", "name", "parent_id", "abuse_email", "escalation_email", "emails",
                 "cdr_bps", "contract_start", "contract_end", "mail_servers"]
ASSIGNMENT_FIELDS = ["prefix", "valid_from", "valid_to", "port_lo", "port_hi"]
ALL_FIELDS = CLIENT_FIELDS + ASSIGNMENT_FIELDS
MAX_ERRORS_SHOWN = 20


@dataclass
class ImportResult:
    clients: int = 0
    assignments: int = 0


@dataclass
class _Plan:
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    client_lines: dict[str, int] = field(default_factory=dict)
    assignments: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _time(value: str, where: str, errors: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        errors.append(f"{where}: {value!r} is not an ISO-8601 time")
        return None
    if parsed.tzinfo is None:
        errors.append(f"{where}: {value!r} has no time zone (add Z or +00:00)")
        return None
    return parsed


def _int(value: Any, where: str, errors: list[str]) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        errors.append(f"{where}: {value!r} is not a whole number")
        return None


def _list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value or "").split(";") if v.strip()]


def _add_row(plan: _Plan, line: str, row: dict[str, Any], assignments: list[dict[str, Any]]) -> None:
    cid = str(row.get("client_id") or row.get("id") or "").strip()
    if not cid:
        plan.errors.append(f"{line}: client_id is empty")
        return
    fields = {
        "id": cid, "name": (row.get("name") or "").strip(),
        "parent_id": (row.get("parent_id") or "").strip() or None,
        "abuse_email": (row.get("abuse_email") or "").strip(),
        "escalation_email": (row.get("escalation_email") or "").strip(),
        "emails": _list(row.get("emails")),
        "cdr_bps": _int(row.get("cdr_bps"), f"{line} cdr_bps", plan.errors),
        "contract_start": _time(str(row.get("contract_start") or ""), f"{line} contract_start", plan.errors),
        "contract_end": _time(str(row.get("contract_end") or ""), f"{line} contract_end", plan.errors),
        "mail_servers": _list(row.get("mail_servers")),
    }
    known = plan.clients.get(cid)
    if known is None:
        plan.clients[cid] = fields
        plan.client_lines[cid] = line
    else:
        for key, value in fields.items():
            if value in (None, "", []):
                continue
            if known.get(key) in (None, "", []):
                known[key] = value
            elif known[key] != value:
                plan.errors.append(f"{line}: {key} {value!r} contradicts {known[key]!r} given "
                                   f"for client {cid} at {plan.client_lines[cid]}")
    for a in assignments:
        where = f"{line}" if len(assignments) == 1 else f"{line} assignment {a.get('prefix')!r}"
        if not a.get("prefix"):
            continue
        errors_before = len(plan.errors)
        try:
            prefix = normalise_prefix(str(a["prefix"]))
        except InputError as exc:
            plan.errors.append(f"{where}: {exc}")
            prefix = None
        spec = {
            "prefix": prefix,
            "valid_from": _time(str(a.get("valid_from") or ""), f"{where} valid_from", plan.errors),
            "valid_to": _time(str(a.get("valid_to") or ""), f"{where} valid_to", plan.errors),
            "port_lo": _int(a.get("port_lo"), f"{where} port_lo", plan.errors),
            "port_hi": _int(a.get("port_hi"), f"{where} port_hi", plan.errors),
        }
        if len(plan.errors) == errors_before:
            plan.assignments.append((len(plan.assignments), where, {"client_id": cid, **spec}))


def _plan_csv(text: str, name: str) -> _Plan:
    plan = _Plan()
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise InputError(f"{name}: empty file; expected a header row with: {', '.join(ALL_FIELDS)}")
    header = [h.strip() for h in reader.fieldnames]
    unknown = [h for h in header if h not in ALL_FIELDS]
    if unknown:
        raise InputError(f"{name} line 1: unknown column(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(ALL_FIELDS)}")
    if "client_id" not in header:
        raise InputError(f"{name} line 1: the client_id column is required")
    reader.fieldnames = header
    for row in reader:
        line = f"{name} line {reader.line_num}"
        if None in row:
            plan.errors.append(f"{line}: more fields than columns in the header")
            continue
        _add_row(plan, line, row, [row])
    return plan


def _plan_json(text: str, name: str) -> _Plan:
    plan = _Plan()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name} line {exc.lineno}: not valid JSON ({exc.msg})") from None
    clients = data.get("clients") if isinstance(data, dict) else data
    if not isinstance(clients, list):
        raise InputError(f'{name}: expected {{"clients": [...]}} or a list of clients')
    for i, item in enumerate(clients):
        where = f"{name} clients[{i}]"
        if not isinstance(item, dict):
            plan.errors.append(f"{where}: expected an object")
            continue
        unknown = set(item) - set(CLIENT_FIELDS) - {"id", "assignments"}
        if unknown:
            plan.errors.append(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        assignments = item.get("assignments") or []
        if not isinstance(assignments, list):
            plan.errors.append(f"{where}: assignments must be a list")
            assignments = []
        _add_row(plan, where, item, [a for a in assignments if isinstance(a, dict)])
    return plan


def import_file(session: Session, path: Path, actor: str = "cli") -> ImportResult:
    """Validate the whole file, then apply it in the caller's transaction."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        plan = _plan_csv(text, path.name)
    elif suffix == ".json":
        plan = _plan_json(text, path.name)
    else:
        raise InputError(f"{path}: unknown format {suffix!r}; use .csv or .json")
    clients: list[Client] = []
    for cid, fields in plan.clients.items():
        try:
            clients.append(Client.model_validate(fields))
        except ValidationError as exc:
            for err in exc.errors():
                key = ".".join(str(p) for p in err["loc"])
                plan.errors.append(f"{plan.client_lines[cid]}: {key}: {err['msg']}")
    if plan.errors:
        shown = plan.errors[:MAX_ERRORS_SHOWN]
        more = len(plan.errors) - len(shown)
        raise InputError("nothing imported; fix these rows and run again:\n  " + "\n  ".join(shown)
                         + (f"\n  ... and {more} more" if more > 0 else ""))
    # Resellers before their end users, whatever the order in the file.
    ordered: list[Client] = []
    pending = {c.id: c for c in clients}
    while pending:
        ready = [c for c in pending.values() if not c.parent_id or c.parent_id not in pending]
        if not ready:
            raise InputError("nothing imported: parent_id links form a cycle among "
                             + ", ".join(sorted(pending)))
        for c in ready:
            ordered.append(c)
            del pending[c.id]
    result = ImportResult()
    for client in ordered:
        try:
            add_client(session, client, actor)
        except InputError as exc:
            raise InputError(f"nothing imported: {plan.client_lines[client.id]}: {exc}") from None
        result.clients += 1
    for _, where, spec in plan.assignments:
        try:
            add_assignment(session, actor=actor, **spec)
        except InputError as exc:
            raise InputError(f"nothing imported: {where}: {exc}") from None
        result.assignments += 1
    return result
