"""BGP mitigation of floods: RTBH (RFC 7999 BLACKHOLE) routes or FlowSpec discard rules.

Life of a mitigation (table ``detect_mitigations``, every change audited):

    pending --approve--> approved --(running detector)--> announced --> withdrawn
       |                                                     ^  (attack quiet for hold_s,
       +--(auto)-----------------------------------------------+   or `mitigations withdraw`)
    allow-listed targets: rejected, never announced

The CLI only changes the status (it has no BGP session); the running
detector's ``Mitigator.sync`` speaks BGP for approved and withdraw-requested
rows on its next tick.
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from aupguard.detect.config import MitigationSettings
from aupguard.detect.engine import Detection
from aupguard.detect.models import Mitigation
from aupguard.errors import InputError
from aupguard.incidents.model import IncidentRow
from aupguard.store import audit
from aupguard.store.db import Store
from aupguard.store.types import utcnow

log = logging.getLogger(__name__)
ACTIVE = ("pending", "approved", "announced", "withdraw-requested")


def host_prefix(address: str) -> str:
    addr = ipaddress.ip_address(address)
    return f"{addr}/{addr.max_prefixlen}"


def allowed(address: str, allow_list: list[str]) -> bool:
    addr = ipaddress.ip_address(address)
    return any(addr in ipaddress.ip_network(p, strict=False) for p in allow_list
               if ipaddress.ip_network(p, strict=False).version == addr.version)


def route_text(settings: MitigationSettings, prefix: str, det: Detection | None = None) -> tuple[str, str]:
    """(kind, ExaBGP route text without the verb)."""
    if settings.mode == "flowspec" and det is not None:
        match = [f"destination {prefix}" if det.role == "victim" else f"source {prefix}"]
        if "syn" in det.rule.name:
            match.append("protocol tcp tcp-flags [syn]")
        elif "udp" in det.rule.name or "reflection" in det.rule.name:
            match.append("protocol udp")
        elif "icmp" in det.rule.name:
            match.append("protocol icmp")
        return "flowspec", "flow route " + " ".join(match) + " discard"
    community = " ".join(settings.communities)
    text = f"route {prefix} next-hop {settings.next_hop}"
    if community:
        text += f" community [{community}]"
    return "blackhole", text


class Mitigator:
    def __init__(self, settings: MitigationSettings, store: Store, speaker=None,
                 workdir: Path | None = None):
        self.settings = settings
        self.store = store
        self._speaker = speaker
        self.workdir = workdir

    @property
    def speaker(self):
        if self._speaker is None:
            from aupguard.detect.exabgp import ExaBGPSpeaker

            self._speaker = ExaBGPSpeaker(self.settings, self.workdir or Path("aupguard-exabgp"))
        return self._speaker

    def _target(self, det: Detection) -> str | None:
        if det.rule.name not in self.settings.rules:
            return None
        if det.role == "victim" and det.victim:
            return det.victim
        if det.role == "offender" and self.settings.mitigate_sources and det.offender:
            return det.offender
        return None

    def observe(self, session: Session, det: Detection, incident: IncidentRow) -> Mitigation | None:
        """A flood detection: propose (or extend) the mitigation of its target."""
        target = self._target(det)
        if target is None:
            return None
        prefix = host_prefix(target)
        last = datetime.fromtimestamp(det.last_ms / 1000, tz=utcnow().tzinfo)
        row = session.execute(select(Mitigation).where(
            Mitigation.prefix == prefix, Mitigation.status.in_(ACTIVE + ("rejected",)))
            .order_by(Mitigation.id.desc()).limit(1)).scalar_one_or_none()
        if row is not None and (row.status != "rejected" or row.incident_id == incident.id):
            row.last_attack_at = max(row.last_attack_at, last)
            return row
        kind, route = route_text(self.settings, prefix, det)
        row = Mitigation(incident_id=incident.id, rule=det.rule.name, client_id=det.client,
                         prefix=prefix, kind=kind, route=route, status="pending",
                         detail={"peak": det.headline, "metrics": det.metrics},
                         created_at=utcnow(), last_attack_at=last)
        if allowed(target, self.settings.allow_list):
            row.status, row.reason = "rejected", "target is on the allow-list"
        session.add(row)
        session.flush()
        audit.record(session, "system", "mitigation.propose", "mitigation", row.id,
                     after={"prefix": prefix, "route": route, "status": row.status,
                            "incident": incident.id})
        if row.status == "pending" and self.settings.auto:
            row.status = "approved"
            self._announce(session, row, "system")
        return row

    def _announce(self, session: Session, row: Mitigation, actor: str) -> None:
        self.speaker.announce(row.route)
        before = row.status
        row.status, row.announced_at = "announced", utcnow()
        audit.record(session, actor, "mitigation.announce", "mitigation", row.id,
                     before={"status": before}, after={"status": "announced", "route": row.route})

    def _withdraw(self, session: Session, row: Mitigation, actor: str, reason: str) -> None:
        before = row.status
        if before in ("announced", "withdraw-requested") and row.announced_at is not None:
            self.speaker.withdraw(row.route)
        row.status, row.withdrawn_at, row.reason = "withdrawn", utcnow(), reason
        audit.record(session, actor, "mitigation.withdraw", "mitigation", row.id,
                     before={"status": before}, after={"status": "withdrawn", "reason": reason})

    def expire(self, session: Session, now: datetime) -> None:
        """Speak BGP for CLI decisions; withdraw what has been quiet for the hold time."""
        hold = timedelta(seconds=self.settings.hold_s)
        rows = session.execute(select(Mitigation).where(Mitigation.status.in_(ACTIVE))).scalars()
        for row in rows:
            if row.status == "approved":
                self._announce(session, row, "system")
            elif row.status == "withdraw-requested":
                self._withdraw(session, row, "system", row.reason or "withdrawn by operator")
            elif row.last_attack_at < now - hold:
                reason = (f"attack quiet for {self.settings.hold_s:g} s" if row.status == "announced"
                          else "attack over before approval")
                self._withdraw(session, row, "system", reason)


# -- operator actions (CLI / API) -------------------------------------------------
def list_mitigations(session: Session, status: str | None = None) -> list[Mitigation]:
    query = select(Mitigation).order_by(Mitigation.id.desc())
    if status:
        query = query.where(Mitigation.status == status)
    return list(session.execute(query).scalars())


def _get(session: Session, mitigation_id: int) -> Mitigation:
    row = session.get(Mitigation, mitigation_id)
    if row is None:
        raise InputError(f"no mitigation {mitigation_id} (`aupguard mitigations list` shows them)")
    return row


def approve(session: Session, mitigation_id: int, actor: str) -> Mitigation:
    row = _get(session, mitigation_id)
    if row.status != "pending":
        raise InputError(f"mitigation {mitigation_id} is {row.status}; only pending ones can be approved")
    row.status = "approved"
    audit.record(session, actor, "mitigation.approve", "mitigation", row.id,
                 before={"status": "pending"}, after={"status": "approved"})
    return row


def request_withdraw(session: Session, mitigation_id: int, actor: str, reason: str = "") -> Mitigation:
    row = _get(session, mitigation_id)
    if row.status not in ACTIVE:
        raise InputError(f"mitigation {mitigation_id} is already {row.status}")
    before = row.status
    row.reason = reason or f"withdrawn by {actor}"
    if before in ("pending", "approved"):
        row.status, row.withdrawn_at = "withdrawn", utcnow()
    else:
        row.status = "withdraw-requested"
    audit.record(session, actor, "mitigation.withdraw-request", "mitigation", row.id,
                 before={"status": before}, after={"status": row.status, "reason": row.reason})
    return row
