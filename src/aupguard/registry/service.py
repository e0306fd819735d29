"""Reading and changing the registry. Every change is audited."""

from __future__ import annotations

import ipaddress
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from aupguard.errors import InputError
from aupguard.registry.attribution import AttributionIndex, Span
from aupguard.registry.models import Assignment, AssignmentRow, Client, ClientRow
from aupguard.store import audit
from aupguard.store.types import utcnow

MAX_CHAIN = 32  # reseller depth guard: a cycle in parent links must not loop forever


def normalise_prefix(text: str) -> str:
    """Canonical prefix text; host bits must be zero (a typo should not silently widen)."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise InputError(f"{text!r} is not a valid prefix: {exc}") from None
    return str(net)


def list_clients(session: Session) -> list[Client]:
    rows = session.execute(select(ClientRow).order_by(ClientRow.id)).scalars()
    return [Client.model_validate(r) for r in rows]


def get_client(session: Session, client_id: str) -> Client | None:
    row = session.get(ClientRow, client_id)
    return Client.model_validate(row) if row else None


def add_client(session: Session, client: Client, actor: str = "system") -> Client:
    """Create or update a client (same id)."""
    if client.parent_id:
        if client.parent_id == client.id:
            raise InputError(f"client {client.id} cannot be its own reseller")
        if session.get(ClientRow, client.parent_id) is None:
            raise InputError(f"client {client.id}: parent {client.parent_id!r} does not exist; "
                             "import the reseller first (or in the same file)")
    row = session.get(ClientRow, client.id)
    data = client.model_dump()
    if row is None:
        row = ClientRow(**data, created_at=utcnow())
        session.add(row)
        session.flush()
        audit.record(session, actor, "client.create", "client", client.id, after=data)
    else:
        before = Client.model_validate(row).model_dump()
        if before != data:
            for key, value in data.items():
                setattr(row, key, value)
            session.flush()
            audit.record(session, actor, "client.update", "client", client.id,
                         before=before, after=data)
    if reseller_cycle(session, client.id):
        raise InputError(f"client {client.id}: parent links form a cycle")
    return client


def reseller_cycle(session: Session, client_id: str) -> bool:
    seen, current = set(), client_id
    while current:
        if current in seen:
            return True
        seen.add(current)
        row = session.get(ClientRow, current)
        current = row.parent_id if row else None
    return False


def reseller_chain(session: Session, client_id: str) -> list[Client]:
    """The client first, then its reseller, the reseller's reseller, ..."""
    chain: list[Client] = []
    current: str | None = client_id
    while current and len(chain) < MAX_CHAIN:
        row = session.get(ClientRow, current)
        if row is None or any(c.id == row.id for c in chain):
            break
        chain.append(Client.model_validate(row))
        current = row.parent_id
    return chain


def notice_recipients(session: Session, client_id: str) -> list[str]:
    """Abuse contacts up the reseller chain, client first, without duplicates."""
    out: list[str] = []
    for client in reseller_chain(session, client_id):
        for addr in [client.abuse_email] + ([] if client.abuse_email else client.emails[:1]):
            if addr and addr not in out:
                out.append(addr)
    return out


def add_assignment(session: Session, client_id: str, prefix: str,
                   valid_from: datetime | None = None, valid_to: datetime | None = None,
                   port_lo: int | None = None, port_hi: int | None = None,
                   actor: str = "system") -> Assignment:
    if session.get(ClientRow, client_id) is None:
        raise InputError(f"client {client_id!r} does not exist")
    prefix = normalise_prefix(prefix)
    if (port_lo is None) != (port_hi is None):
        raise InputError("give both port_lo and port_hi (a CGNAT port range), or neither")
    if port_lo is not None and not (0 <= port_lo <= port_hi <= 65535):
        raise InputError(f"port range {port_lo}-{port_hi} is not within 0-65535 or is reversed")
    for label, value in (("valid_from", valid_from), ("valid_to", valid_to)):
        if value is not None and value.tzinfo is None:
            raise InputError(f"{label} {value.isoformat()} has no time zone; add Z or +00:00")
    if valid_from and valid_to and valid_to <= valid_from:
        raise InputError(f"valid_to {valid_to.isoformat()} is not after valid_from")
    existing = session.execute(select(AssignmentRow).where(
        AssignmentRow.client_id == client_id, AssignmentRow.prefix == prefix,
        AssignmentRow.valid_from.is_(None) if valid_from is None else AssignmentRow.valid_from == valid_from,
        AssignmentRow.valid_to.is_(None) if valid_to is None else AssignmentRow.valid_to == valid_to,
        AssignmentRow.port_lo.is_(None) if port_lo is None else AssignmentRow.port_lo == port_lo,
    )).scalar_one_or_none()
    if existing is not None:
        return Assignment.model_validate(existing)
    row = AssignmentRow(client_id=client_id, prefix=prefix, valid_from=valid_from,
                        valid_to=valid_to, port_lo=port_lo, port_hi=port_hi, created_at=utcnow())
    session.add(row)
    session.flush()
    result = Assignment.model_validate(row)
    audit.record(session, actor, "assignment.create", "assignment", row.id,
                 after=result.model_dump())
    return result


def end_assignment(session: Session, assignment_id: int, at: datetime,
                   actor: str = "system") -> Assignment:
    row = session.get(AssignmentRow, assignment_id)
    if row is None:
        raise InputError(f"assignment {assignment_id} does not exist")
    before = Assignment.model_validate(row).model_dump()
    row.valid_to = at
    session.flush()
    audit.record(session, actor, "assignment.end", "assignment", row.id, before=before,
                 after=Assignment.model_validate(row).model_dump())
    return Assignment.model_validate(row)


def list_assignments(session: Session, client_id: str | None = None) -> list[Assignment]:
    query = select(AssignmentRow).order_by(AssignmentRow.client_id, AssignmentRow.prefix,
                                           AssignmentRow.valid_from)
    if client_id:
        query = query.where(AssignmentRow.client_id == client_id)
    return [Assignment.model_validate(r) for r in session.execute(query).scalars()]


def load_index(session: Session) -> AttributionIndex:
    """A snapshot of every assignment, ready for scalar and vectorised attribution."""
    rows = session.execute(select(AssignmentRow)).scalars()
    return AttributionIndex([
        Span(r.client_id, r.prefix, r.valid_from, r.valid_to, r.port_lo, r.port_hi) for r in rows
    ])
