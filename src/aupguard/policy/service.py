"""AUP versions in force over time, clause lookup, posting, acceptance by continued use.

The AUP says changes are "effective upon posting" and that use after posting
"shall be deemed to constitute Clients' acceptance". So a posted version is in
force from its posting time, every client is sent a change notice (through the
outbox), and the first activity of each client after the posting is recorded
as its acceptance.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aupguard.errors import InputError
from aupguard.policy.catalogue import (
    SHIPPED_VERSION,
    ClauseSpec,
    resolve,
    shipped_catalogue,
    shipped_markers,
    shipped_text,
)
from aupguard.policy.models import AcceptanceRow, PolicyVersionRow
from aupguard.store import audit, outbox
from aupguard.store.types import utcnow

# The shipped AUP carries "Copyright © 2014"; it is taken as posted at the start of 2014.
SHIPPED_POSTED_AT = datetime(2014, 1, 1, tzinfo=timezone.utc)
ACTIVITIES = ("traffic", "login", "api", "mail")


@dataclass(frozen=True)
class Clause:
    id: str
    version: str
    text: str
    category: str
    mechanism: str
    start: int
    end: int
    posted_at: datetime


@dataclass
class PolicyVersion:
    version: str
    posted_at: datetime
    text: str
    clauses: dict[str, ClauseSpec] = field(default_factory=dict)
    posted_by: str = "shipped"

    def clause(self, clause_id: str) -> Clause:
        spec = self.clauses.get(clause_id)
        if spec is None:
            raise InputError(f"clause {clause_id!r} is not in AUP version {self.version}; "
                             f"known: {', '.join(sorted(self.clauses))}")
        return Clause(clause_id, self.version, self.text[spec.start:spec.end], spec.category,
                      spec.mechanism, spec.start, spec.end, self.posted_at)


def shipped_version() -> PolicyVersion:
    return PolicyVersion(SHIPPED_VERSION, SHIPPED_POSTED_AT, shipped_text(),
                         {c.id: c for c in shipped_catalogue()})


def _from_row(row: PolicyVersionRow) -> PolicyVersion:
    clauses = {cid: ClauseSpec(cid, c["start"], c["end"], c["category"], c["mechanism"])
               for cid, c in row.clauses.items()}
    return PolicyVersion(row.version, row.posted_at, row.text, clauses, row.posted_by)


def versions(session: Session) -> list[PolicyVersion]:
    """Every version, oldest first: the shipped one plus those posted here."""
    rows = session.execute(select(PolicyVersionRow).order_by(PolicyVersionRow.posted_at)).scalars()
    posted = [_from_row(r) for r in rows]
    if not any(v.version == SHIPPED_VERSION for v in posted):
        posted.insert(0, shipped_version())
    return sorted(posted, key=lambda v: v.posted_at)


def get_version(session: Session, version: str) -> PolicyVersion:
    for v in versions(session):
        if v.version == version:
            return v
    raise InputError(f"no AUP version {version!r}; see `aupguard policy versions`")


def version_at(session: Session, at: datetime | None = None) -> PolicyVersion:
    """The version in force at `at` (now by default). Before any posting: the earliest."""
    at = at or utcnow()
    all_versions = versions(session)
    in_force = [v for v in all_versions if v.posted_at <= at]
    return in_force[-1] if in_force else all_versions[0]


def clause_at(session: Session, clause_id: str, at: datetime | None = None) -> Clause:
    """The clause's exact text in the version in force at `at`."""
    return version_at(session, at).clause(clause_id)


def post_version(session: Session, text: str, version: str, markers: dict | None = None,
                 at: datetime | None = None, actor: str = "system") -> PolicyVersion:
    """Publish a new version, in force from `at` (now); queue a change notice per client."""
    if not text.strip():
        raise InputError("the new AUP text is empty")
    if any(v.version == version for v in versions(session)):
        raise InputError(f"AUP version {version!r} exists already; choose a new version name")
    at = at or utcnow()
    specs = resolve(text, markers if markers is not None else shipped_markers(),
                    "--clauses map" if markers is not None else
                    "the shipped clause phrases (give --clauses MAP for a reworded AUP)")
    previous = version_at(session, at)
    row = PolicyVersionRow(version=version, posted_at=at, posted_by=actor, text=text,
                           clauses={s.id: {"start": s.start, "end": s.end, "category": s.category,
                                           "mechanism": s.mechanism} for s in specs})
    session.add(row)
    session.flush()
    audit.record(session, actor, "policy.post", "policy_version", version,
                 before={"version": previous.version},
                 after={"version": version, "posted_at": at.isoformat(), "clauses": len(specs)})
    _queue_change_notices(session, previous, _from_row(row))
    return _from_row(row)


def _queue_change_notices(session: Session, old: PolicyVersion, new: PolicyVersion) -> int:
    from aupguard.registry import list_clients

    diff = "\n".join(difflib.unified_diff(old.text.splitlines(), new.text.splitlines(),
                                          f"AUP {old.version}", f"AUP {new.version}", lineterm="",
                                          n=1))
    subject = f"Acceptable Use Policy updated: version {new.version}"
    count = 0
    for client in list_clients(session):
        to = [a for a in [client.abuse_email, *client.emails] if a]
        if not to:
            continue
        body = (f"Dear {client.name},\n\n"
                f"Our Acceptable Use Policy has changed. Version {new.version} is in effect from "
                f"{new.posted_at.isoformat()} (changes are effective upon posting).\n"
                "Use of our services after this posting constitutes acceptance of the new terms.\n\n"
                f"Changes since version {old.version}:\n\n{diff or '(wording unchanged)'}\n")
        outbox.enqueue(session, kind="policy-change", to=sorted(set(to)), subject=subject,
                       body=body, client_id=client.id, ref=f"policy:{new.version}")
        count += 1
    return count


def record_activity(session: Session, client_id: str, kind: str,
                    at: datetime | None = None) -> AcceptanceRow | None:
    """Record acceptance by continued use: the first activity after the posting in force."""
    if kind not in ACTIVITIES:
        raise ValueError(f"activity {kind!r}: use one of {ACTIVITIES}")
    at = at or utcnow()
    current = version_at(session, at)
    if at < current.posted_at:
        return None
    existing = session.execute(select(AcceptanceRow).where(
        AcceptanceRow.client_id == client_id, AcceptanceRow.version == current.version)
    ).scalar_one_or_none()
    if existing is not None:
        if at < existing.accepted_at:  # an earlier activity reported late wins
            existing.accepted_at, existing.activity = at, kind
        return existing
    row = AcceptanceRow(client_id=client_id, version=current.version, accepted_at=at, activity=kind)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # a concurrent writer recorded it first
        return session.execute(select(AcceptanceRow).where(
            AcceptanceRow.client_id == client_id, AcceptanceRow.version == current.version)
        ).scalar_one()
    audit.record(session, "system", "policy.accept", "client", client_id,
                 after={"version": current.version, "activity": kind, "at": at.isoformat()})
    return row


def acceptances(session: Session, version: str | None = None) -> list[AcceptanceRow]:
    query = select(AcceptanceRow).order_by(AcceptanceRow.version, AcceptanceRow.client_id)
    if version:
        query = query.where(AcceptanceRow.version == version)
    return list(session.execute(query).scalars())
