"""Spam traps (clause mail.purchased-lists).

Trap addresses were never given to anyone, so mail to them means the sender's
list was bought, scraped or harvested. A hit attributed to a client raises
(or grows) its 'purchased_list' indicator and a finding.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from aupguard.bulkmail.addresses import normalise_address, normalise_domain
from aupguard.bulkmail.config import BulkmailSettings
from aupguard.bulkmail.models import ClientIndicator, TrapHit
from aupguard.errors import InputError
from aupguard.incidents import Finding, report
from aupguard.store import audit

CLAUSE = "mail.purchased-lists"
INDICATOR = "purchased_list"


def _settings(settings: BulkmailSettings | None) -> BulkmailSettings:
    if settings is not None:
        return settings
    from aupguard.config import load_settings

    return load_settings().bulkmail   # $AUPGUARD_CONFIG or ./aupguard.toml


def is_trap(address: str, settings: BulkmailSettings | None = None) -> bool:
    """Is `address` a configured trap (settings default to the loaded configuration)?"""
    settings = _settings(settings)
    norm = normalise_address(address)
    if norm in {normalise_address(a) for a in settings.trap_addresses}:
        return True
    domain = norm.rsplit("@", 1)[-1] if "@" in norm else ""
    return bool(domain) and domain in {normalise_domain(d) for d in settings.trap_domains}


def record_trap_hit(session: Session, address: str, client_id: str | None, at: datetime,
                    source: str, offender: str = "", ref: str = "", *,
                    settings: BulkmailSettings | None = None, actor: str = "system") -> TrapHit:
    """Store a hit on a trap; with a client, raise its purchased-list indicator and a finding."""
    settings = _settings(settings)
    if not is_trap(address, settings):
        raise InputError(f"{address!r} is not a configured spam trap ([bulkmail] trap_addresses, "
                         "trap_domains)")
    norm = normalise_address(address)
    hit = TrapHit(trap_address=norm, client_id=client_id, at=at, source=source[:30],
                  offender=offender[:200], ref=ref[:200])
    session.add(hit)
    session.flush()
    if client_id is not None:
        indicator = session.execute(select(ClientIndicator).where(
            ClientIndicator.client_id == client_id, ClientIndicator.indicator == INDICATOR)
        ).scalar_one_or_none()
        if indicator is None:
            indicator = ClientIndicator(client_id=client_id, indicator=INDICATOR, count=0,
                                        first_at=at, last_at=at)
            session.add(indicator)
        indicator.count += 1
        indicator.first_at, indicator.last_at = min(indicator.first_at, at), max(indicator.last_at, at)
        session.flush()
        incident = report(session, Finding(
            source="complaint", rule="spam_trap", clause_id=CLAUSE, key=f"spamtrap:{client_id}",
            first_seen=at, last_seen=at, client_id=client_id, offender=offender,
            summary=f"mail from {offender or client_id} hit spam trap(s): purchased or harvested list",
            metrics={"trap_hits": indicator.count}, peak=float(indicator.count),
            evidence=[{"kind": "trap_hit", "id": hit.id, "source": source, "ref": ref,
                       "at": at.isoformat()}]), actor=actor)
        hit.incident_id = incident.id
    audit.record(session, actor, "trap.hit", "trap_hit", hit.id,
                 after={"client": client_id, "source": source, "offender": offender})
    return hit


def indicators(session: Session, client_id: str | None = None) -> list[ClientIndicator]:
    query = select(ClientIndicator).order_by(ClientIndicator.last_at.desc())
    if client_id:
        query = query.where(ClientIndicator.client_id == client_id)
    return list(session.execute(query).scalars())


def hits(session: Session, client_id: str | None = None, limit: int = 1000) -> list[TrapHit]:
    query = select(TrapHit).order_by(TrapHit.at.desc()).limit(limit)
    if client_id:
        query = query.where(TrapHit.client_id == client_id)
    return list(session.execute(query).scalars())
