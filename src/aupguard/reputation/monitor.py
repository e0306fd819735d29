"""The blocklist monitor (clause security.blacklisting).

Every address of every client assignment in force is checked against the
configured zones. A new listing opens an incident for the client holding the
address (key ``dnsbl:<zone>:<address>``); a definitive "not listed" answer for
a listed address ends the listing and its incident; errors (timeouts,
refusals) change nothing and are reported.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from aupguard import netaddr
from aupguard.errors import ConfigError, InputError
from aupguard.incidents import Finding, IncidentRow, report
from aupguard.reputation.config import ReputationSettings
from aupguard.reputation.dnsbl import CLEAR, ERROR, LISTED, Answer, ZoneStats, check_sync
from aupguard.reputation.models import DnsblListing, DnsblRun
from aupguard.store import audit
from aupguard.store.types import utcnow

CLAUSE = "security.blacklisting"
MAX_ERROR_SAMPLES = 20


@dataclass
class CheckReport:
    run_id: int
    addresses: int
    queries: int
    listed: int
    new_listings: list[dict] = field(default_factory=list)
    delistings: list[dict] = field(default_factory=list)
    errors: int = 0
    error_samples: list[dict] = field(default_factory=list)
    skipped_ipv6_prefixes: list[str] = field(default_factory=list)
    zones: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0


def client_addresses(session: Session, at: datetime, client_id: str | None = None,
                     limit: int = 1_048_576, ipv6: bool = False) -> tuple[list[str], list[str]]:
    """Every address of every assignment in force at `at` (IPv4 expanded with numpy).

    IPv6 prefixes cannot be enumerated; only single addresses (/128) are kept
    and only when a zone takes IPv6. Returns (addresses, skipped prefixes).
    """
    from aupguard.registry import load_index

    spans = load_index(session).all_prefixes(at)
    if client_id is not None:
        spans = [s for s in spans if s.client_id == client_id]
    ranges: list[np.ndarray] = []
    v6: list[str] = []
    skipped: list[str] = []
    total = 0
    for span in spans:
        net = ipaddress.ip_network(span.prefix, strict=False)
        if isinstance(net, ipaddress.IPv6Network):
            if net.prefixlen == 128 and ipv6:
                v6.append(str(net.network_address))
            else:
                skipped.append(span.prefix)
            continue
        total += net.num_addresses
        if total > limit:
            raise InputError(f"client assignments hold more than {limit:,} IPv4 addresses; "
                             "raise [reputation] max_addresses if that is intended")
        first = int(net.network_address)
        ranges.append(np.arange(first, first + net.num_addresses, dtype=np.uint32))
    v4 = np.unique(np.concatenate(ranges)) if ranges else np.empty(0, dtype=np.uint32)
    octets = v4.astype(">u4").view(np.uint8).reshape(-1, 4)
    # String formatting is per address by nature (each is a DNS query anyway).
    addresses = [f"{a}.{b}.{c}.{d}" for a, b, c, d in octets.tolist()]
    return addresses + sorted(set(v6)), sorted(set(skipped))


def _attribute(session: Session, addresses: list[str], at: datetime) -> dict[str, str | None]:
    """Client holding each address at `at`, vectorised (None: nobody or ambiguous)."""
    from aupguard.registry import load_index

    if not addresses:
        return {}
    idx = load_index(session)
    hi, lo = netaddr.strings_to_hilo(addresses)
    t_ms = np.full(len(addresses), int(at.timestamp() * 1000), dtype=np.int64)
    codes = idx.lookup(hi, lo, t_ms)
    return {a: (idx.client_ids[c] if c >= 0 else None) for a, c in zip(addresses, codes.tolist())}


def _end_incident(session: Session, incident_id: int | None, at: datetime) -> None:
    if incident_id is None:
        return
    row = session.get(IncidentRow, incident_id)
    if row is not None and row.status == "active":
        row.status = "ended"
        row.last_seen = max(row.last_seen, at)
        audit.record(session, "reputation", "incident.end", "incident", row.id,
                     before={"status": "active"}, after={"status": "ended"},
                     note="address delisted")


def apply_answers(session: Session, answers: list[Answer], now: datetime) -> tuple[list[dict], list[dict]]:
    """Reconcile answers with the listing history: open new listings, end cleared ones."""
    active = {(r.zone, r.address): r for r in session.execute(
        select(DnsblListing).where(DnsblListing.status == "listed")).scalars()}
    listed = [a for a in answers if a.status == LISTED]
    owners = _attribute(session, sorted({a.address for a in listed}), now)
    new, ended = [], []
    for ans in listed:
        row = active.get((ans.zone, ans.address))
        client = owners.get(ans.address)
        meaning = ", ".join(f"{c} ({m})" for c, m in zip(ans.codes, ans.meanings))
        finding = Finding(
            source="monitor", rule="dnsbl", clause_id=CLAUSE, key=f"dnsbl:{ans.zone}:{ans.address}",
            first_seen=row.listed_at if row else now, last_seen=now, client_id=client,
            offender=ans.address, summary=f"{ans.address} listed by {ans.zone}: {meaning}",
            metrics={"zone": ans.zone, "codes": ans.codes, "meanings": ans.meanings},
            evidence=[{"kind": "dnsbl_answer", "zone": ans.zone, "address": ans.address,
                       "codes": ans.codes, "at": now.isoformat()}], peak=1.0)
        incident = report(session, finding, actor="reputation")
        if row is not None:
            row.last_seen_at = now
            row.codes, row.meanings = ans.codes, ans.meanings
            continue
        row = DnsblListing(zone=ans.zone, address=ans.address, client_id=client, codes=ans.codes,
                           meanings=ans.meanings, status="listed", listed_at=now,
                           last_seen_at=now, incident_id=incident.id)
        session.add(row)
        session.flush()
        audit.record(session, "reputation", "dnsbl.listed", "dnsbl_listing", row.id,
                     after={"zone": ans.zone, "address": ans.address, "codes": ans.codes,
                            "client": client})
        new.append({"zone": ans.zone, "address": ans.address, "client_id": client,
                    "codes": ans.codes, "meanings": ans.meanings, "incident_id": incident.id})
    for ans in answers:
        if ans.status != CLEAR:
            continue                  # errors never delist
        row = active.get((ans.zone, ans.address))
        if row is None:
            continue
        row.status, row.delisted_at = "delisted", now
        audit.record(session, "reputation", "dnsbl.delisted", "dnsbl_listing", row.id,
                     before={"status": "listed"}, after={"status": "delisted"})
        _end_incident(session, row.incident_id, now)
        ended.append({"zone": ans.zone, "address": ans.address, "client_id": row.client_id,
                      "listed_at": row.listed_at.isoformat(), "incident_id": row.incident_id})
    return new, ended


def check(session: Session, settings: ReputationSettings, client_id: str | None = None,
          now: datetime | None = None, addresses: list[str] | None = None) -> CheckReport:
    """Run one check of client space (or of `addresses`) against every configured zone."""
    import time

    if not settings.zones:
        raise ConfigError("no DNSBL zones configured: add [[reputation.zones]] entries "
                          "(name, codes) to aupguard.toml; the default checks nothing")
    now = now or utcnow()
    skipped: list[str] = []
    if addresses is None:
        addresses, skipped = client_addresses(session, now, client_id, settings.max_addresses,
                                              ipv6=any(z.ipv6 for z in settings.zones))
    started = time.monotonic()
    answers, stats = check_sync(addresses, settings.zones, settings.resolver,
                                settings.resolver_port, settings.timeout, settings.retries)
    seconds = time.monotonic() - started
    new, ended = apply_answers(session, answers, now)
    errors = [a for a in answers if a.status == ERROR]
    samples = [{"zone": a.zone, "address": a.address, "error": a.error, "attempts": a.attempts}
               for a in errors[:MAX_ERROR_SAMPLES]]
    queries = sum(s.queries_sent for s in stats.values())
    run = DnsblRun(started_at=now, finished_at=utcnow(), client_id=client_id,
                   zones=[z.name for z in settings.zones], addresses=len(addresses),
                   queries=queries, listed=sum(a.status == LISTED for a in answers),
                   new_listings=len(new), delistings=len(ended), errors=len(errors),
                   error_samples=samples)
    session.add(run)
    session.flush()
    return CheckReport(run_id=run.id, addresses=len(addresses), queries=queries, listed=run.listed,
                       new_listings=new, delistings=ended, errors=len(errors), error_samples=samples,
                       skipped_ipv6_prefixes=skipped, zones={n: _zone_summary(s) for n, s in stats.items()},
                       seconds=round(seconds, 3))


def _zone_summary(stats: ZoneStats) -> dict:
    return {"queries": stats.queries_sent, "answers": stats.answers, "timeouts": stats.timeouts,
            "max_in_flight": stats.max_in_flight, "malformed": stats.malformed}


def current_listings(session: Session, client_id: str | None = None) -> list[DnsblListing]:
    """Addresses listed now, oldest listing first (for the console and CLI)."""
    query = select(DnsblListing).where(DnsblListing.status == "listed").order_by(
        DnsblListing.listed_at, DnsblListing.address, DnsblListing.zone)
    if client_id:
        query = query.where(DnsblListing.client_id == client_id)
    return list(session.execute(query).scalars())


def listing_history(session: Session, address: str) -> list[DnsblListing]:
    """Every listing episode of one address, newest first."""
    try:
        text = str(netaddr.parse_address(address))
    except ValueError:
        raise InputError(f"{address!r} is not an IP address") from None
    return list(session.execute(select(DnsblListing).where(DnsblListing.address == text)
                                .order_by(DnsblListing.listed_at.desc(), DnsblListing.id.desc())
                                ).scalars())


def recent_runs(session: Session, limit: int = 20) -> list[DnsblRun]:
    return list(session.execute(select(DnsblRun).order_by(DnsblRun.id.desc()).limit(limit)).scalars())
