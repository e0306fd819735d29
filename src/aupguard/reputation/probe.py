"""Open-relay and roaming-auth probe of client mail servers (mail.relay, mail.roaming-auth).

The probe talks SMTP up to RCPT and stops: every variant ends with RSET, the
session with QUIT, and DATA/BDAT are refused by the client class itself, so
nothing can be delivered. A RCPT accepted for an outside recipient from an
outside sender without authentication is the classic open-relay signal.

smtplib (stdlib) speaks the protocol; the subclass only records the
transcript (evidence) and guards against DATA.
"""

from __future__ import annotations

import ipaddress
import smtplib
import socket
import ssl
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from aupguard.errors import InputError
from aupguard.incidents import Finding, IncidentRow, report
from aupguard.reputation.config import ReputationSettings
from aupguard.reputation.models import SmtpProbe
from aupguard.store import audit
from aupguard.store.types import utcnow

MAX_TRANSCRIPT = 64 * 1024      # a hostile server could talk forever
MAX_REPLY_SHOWN = 400
FORBIDDEN = ("DATA", "BDAT")


class DataForbidden(RuntimeError):
    """The probe must never send a message body."""


class RecordingSMTP(smtplib.SMTP):
    """smtplib.SMTP that keeps a capped transcript and can never send DATA/BDAT."""

    def __init__(self, *args, **kwargs):
        self.transcript: list[str] = []
        self._size = 0
        super().__init__(*args, **kwargs)

    def _log(self, line: str) -> None:
        if self._size < MAX_TRANSCRIPT:
            line = line[:MAX_REPLY_SHOWN]
            self.transcript.append(line)
            self._size += len(line)

    def send(self, s) -> None:  # type: ignore[override]
        text = s.decode("ascii", "replace") if isinstance(s, bytes) else s
        if text.split(" ", 1)[0].strip().upper() in FORBIDDEN:
            raise DataForbidden("the relay probe never sends DATA or BDAT")
        self._log("C: " + text.rstrip("\r\n"))
        super().send(s)

    def getreply(self):  # type: ignore[override]
        code, msg = super().getreply()
        for line in msg.decode("utf-8", "replace").splitlines() or [""]:
            self._log(f"S: {code} {line}")
        return code, msg

    def data(self, msg):  # type: ignore[override]
        raise DataForbidden("the relay probe never sends DATA")


@dataclass
class Variant:
    name: str
    mail_from: str
    rcpt_to: str


def relay_variants(server: str, outside: str) -> list[Variant]:
    """Classic relay-test address forms (after the relay testers of the 1990s-2000s)."""
    s, o, u = server, outside, "relaytest"
    sender = f"probe@{o}"
    return [
        Variant("plain", sender, f"{u}@{o}"),
        Variant("percent-hack", sender, f"{u}%{o}@{s}"),
        Variant("quoted", sender, f'"{u}@{o}"'),
        Variant("quoted-percent", sender, f'"{u}%{o}"@{s}'),
        Variant("uucp-bang", sender, f"{o}!{u}"),
        Variant("uucp-bang-at-server", sender, f"{o}!{u}@{s}"),
        Variant("quoted-bang", sender, f'"{o}!{u}"@{s}'),
        Variant("source-route", sender, f"@{s}:{u}@{o}"),
        Variant("double-at", sender, f"{u}@{o}@{s}"),
        Variant("null-sender", "", f"{u}@{o}"),
        Variant("local-sender", f"postmaster@{s}", f"{u}@{o}"),
    ]


@dataclass
class ProbeResult:
    host: str
    address: str
    port: int
    verdict: str                          # open_relay | closed | inconclusive | unreachable | error
    banner: str = ""
    auth_offered: bool = False
    auth_mechanisms: list[str] = field(default_factory=list)
    auth_required: bool = False
    starttls: bool = False
    accepted: list[str] = field(default_factory=list)
    variants: list[dict] = field(default_factory=list)
    error: str = ""
    transcript: list[str] = field(default_factory=list)
    client_id: str | None = None
    incident_ids: list[int] = field(default_factory=list)
    skipped: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _reply_text(msg: bytes) -> str:
    return msg.decode("utf-8", "replace")[:MAX_REPLY_SHOWN]


def _auth_from_ehlo(smtp: smtplib.SMTP) -> list[str]:
    return smtp.esmtp_features.get("auth", "").upper().split() if smtp.has_extn("auth") else []


def probe_port(address: str, port: int, settings: ReputationSettings, host: str | None = None
               ) -> ProbeResult:
    """Probe one address:port; never raises for network trouble (it is the verdict)."""
    result = ProbeResult(host=host or address, address=address, port=port, verdict="error")
    try:
        smtp = RecordingSMTP(timeout=settings.probe_timeout)
    except OSError as exc:  # pragma: no cover - constructor without host does not connect
        result.error = str(exc)
        return result
    try:
        code, banner = smtp.connect(address, port)
    except (OSError, smtplib.SMTPException) as exc:
        result.verdict, result.error = "unreachable", f"{type(exc).__name__}: {exc}"
        result.transcript = smtp.transcript
        return result
    result.banner = _reply_text(banner)
    try:
        if code != 220:
            result.verdict, result.error = "error", f"greeting {code}: {result.banner}"
            return result
        _run_variants(smtp, address, settings, result)
        _check_tls_auth(smtp, settings, result)
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            pass
    except DataForbidden:
        raise
    except (OSError, smtplib.SMTPException) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        if not result.accepted:
            result.verdict = "error"
    finally:
        result.transcript = smtp.transcript
        try:
            smtp.close()
        except OSError:
            pass
    return result


def _server_name(banner: str, address: str) -> str:
    first = banner.split()[0] if banner.split() else ""
    literal = f"[{address}]" if ":" not in address else f"[IPv6:{address}]"
    return first if "." in first and all(c.isalnum() or c in ".-" for c in first) else literal


def _run_variants(smtp: RecordingSMTP, address: str, settings: ReputationSettings,
                  result: ProbeResult) -> None:
    code, _ = smtp.ehlo(settings.probe_helo)
    if not 200 <= code < 300:
        smtp.helo(settings.probe_helo)
    result.auth_mechanisms = _auth_from_ehlo(smtp)
    result.auth_offered = bool(result.auth_mechanisms)
    result.starttls = smtp.has_extn("starttls")
    server = _server_name(result.banner, address)
    auth_demanded = False
    rejected = tempfailed = 0
    for variant in relay_variants(server, settings.probe_outside_domain):
        entry = {"variant": variant.name, "mail_from": variant.mail_from, "rcpt_to": variant.rcpt_to}
        mcode, mmsg = smtp.docmd("MAIL", f"FROM:<{variant.mail_from}>")
        entry["mail"] = [mcode, _reply_text(mmsg)]
        if mcode == 530 or mcode == 550 and b"auth" in mmsg.lower():
            auth_demanded = True
        if 200 <= mcode < 300:
            rcode, rmsg = smtp.docmd("RCPT", f"TO:<{variant.rcpt_to}>")
            entry["rcpt"] = [rcode, _reply_text(rmsg)]
            if rcode in (250, 251):
                result.accepted.append(variant.name)
            elif 400 <= rcode < 500:
                tempfailed += 1
            else:
                rejected += 1
            if rcode == 530 or b"authenticat" in rmsg.lower():
                auth_demanded = True
        elif 400 <= mcode < 500:
            tempfailed += 1
        else:
            rejected += 1
        result.variants.append(entry)
        if mcode == 421:
            break                     # server is closing the session
        smtp.rset()
    if result.accepted:
        result.verdict = "open_relay"
    elif rejected:
        result.verdict = "closed"
    else:
        result.verdict = "inconclusive"
    result.auth_required = not result.accepted and (auth_demanded or result.auth_offered)


def _check_tls_auth(smtp: RecordingSMTP, settings: ReputationSettings, result: ProbeResult) -> None:
    """Many servers offer AUTH only after STARTTLS: look there too (no certificate check:
    we only read the capability list)."""
    if result.auth_offered or not result.starttls:
        return
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        smtp.starttls(context=context)
        smtp.ehlo(settings.probe_helo)
    except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
        smtp._log(f"-- STARTTLS failed: {exc}")
        return
    mechanisms = _auth_from_ehlo(smtp)
    if mechanisms:
        result.auth_mechanisms, result.auth_offered = mechanisms, True
        if result.verdict != "open_relay":
            result.auth_required = True


# -- targets, rate limit, findings -----------------------------------------------------------

def resolve_target(target: str) -> tuple[str, int | None]:
    """HOST, HOST:PORT, [v6]:PORT or v6 -> (host, port or None)."""
    text = target.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if text.count(":") == 1:
        host, port = text.split(":")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise InputError(f"{target!r}: the port must be a number 1-65535")
        return host, int(port)
    return text, None


def authorise(session: Session, host: str, allow_unassigned: bool, at: datetime) -> tuple[str, str | None]:
    """The address to connect to and its client; refuses addresses outside client space."""
    from aupguard.registry import load_index

    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        try:
            address = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)[0][4][0]
        except OSError as exc:
            raise InputError(f"cannot resolve {host!r}: {exc}; give an IP address") from None
    who = load_index(session).who(address, at)
    if who.status == "match":
        return address, who.client_id
    if who.status == "ambiguous":
        return address, None
    if allow_unassigned and ipaddress.ip_address(address).is_loopback:
        return address, None
    hint = " (--allow-unassigned is for loopback lab targets only)" if allow_unassigned else ""
    raise InputError(f"{address} is not inside any client assignment: aupguard probes only "
                     f"client mail servers{hint}")


def recently_probed(session: Session, address: str, port: int, at: datetime,
                    hours: float) -> SmtpProbe | None:
    if hours <= 0:
        return None
    return session.execute(select(SmtpProbe).where(
        SmtpProbe.host == address, SmtpProbe.port == port,
        SmtpProbe.at > at - timedelta(hours=hours)).order_by(SmtpProbe.at.desc()).limit(1)
    ).scalar_one_or_none()


def _end_active(session: Session, key: str, at: datetime) -> None:
    rows = session.execute(select(IncidentRow).where(IncidentRow.key == key,
                                                     IncidentRow.status == "active")).scalars()
    for row in rows:
        row.status = "ended"
        audit.record(session, "reputation", "incident.end", "incident", row.id,
                     before={"status": "active"}, after={"status": "ended"},
                     note="probe found the server closed")


def record_result(session: Session, result: ProbeResult, at: datetime) -> SmtpProbe:
    """Store the probe, and open (or end) relay / roaming-auth incidents."""
    target = f"{result.address}:{result.port}"
    evidence = [{"kind": "smtp_transcript", "target": target, "at": at.isoformat(),
                 "transcript": "\n".join(result.transcript)}]
    metrics = {"verdict": result.verdict, "accepted": result.accepted,
               "auth_offered": result.auth_offered, "auth_required": result.auth_required}
    relay_key, auth_key = f"smtp_relay:{target}", f"smtp_auth:{target}"
    if result.verdict == "open_relay":
        incident = report(session, Finding(
            source="monitor", rule="smtp_relay_probe", clause_id="mail.relay", key=relay_key,
            first_seen=at, last_seen=at, client_id=result.client_id, offender=target,
            summary=f"{target} relays mail from outside to outside "
                    f"({', '.join(result.accepted)})", metrics=metrics, evidence=evidence,
            peak=float(len(result.accepted))), actor="reputation")
        result.incident_ids.append(incident.id)
        if result.auth_offered:
            incident = report(session, Finding(
                source="monitor", rule="smtp_auth_probe", clause_id="mail.roaming-auth",
                key=auth_key, first_seen=at, last_seen=at, client_id=result.client_id,
                offender=target, summary=f"{target} offers AUTH but relays without it",
                metrics=metrics, evidence=evidence, peak=1.0), actor="reputation")
            result.incident_ids.append(incident.id)
    elif result.verdict == "closed":
        _end_active(session, relay_key, at)
        _end_active(session, auth_key, at)
    row = SmtpProbe(at=at, host=result.address, port=result.port, client_id=result.client_id,
                    verdict=result.verdict, auth_offered=result.auth_offered,
                    auth_required=result.auth_required, accepted_variants=result.accepted,
                    transcript="\n".join(result.transcript), incident_ids=result.incident_ids)
    session.add(row)
    session.flush()
    audit.record(session, "reputation", "smtp.probe", "smtp_probe", row.id,
                 after={"target": target, "verdict": result.verdict, "client": result.client_id})
    return row


def probe(session: Session, settings: ReputationSettings, target: str, *,
          allow_unassigned: bool = False, force: bool = False, at: datetime | None = None
          ) -> list[ProbeResult]:
    """Probe HOST[:PORT] (without a port: each of probe_ports), store results and findings."""
    at = at or utcnow()
    host, port = resolve_target(target)
    address, client_id = authorise(session, host, allow_unassigned, at)
    results: list[ProbeResult] = []
    for i, p in enumerate([port] if port else settings.probe_ports):
        last = None if force else recently_probed(session, address, p, at,
                                                  settings.probe_interval_hours)
        if last is not None:
            results.append(ProbeResult(host=host, address=address, port=p, verdict=last.verdict,
                                       client_id=client_id,
                                       skipped=f"probed at {last.at.isoformat()}; next probe "
                                               f"after {settings.probe_interval_hours} h"))
            continue
        if i and settings.probe_pause:
            time.sleep(settings.probe_pause)
        result = probe_port(address, p, settings, host=host)
        result.client_id = client_id
        if result.verdict != "unreachable":
            record_result(session, result, at)
        results.append(result)
    return results


def probe_registered(session: Session, settings: ReputationSettings, at: datetime | None = None
                     ) -> list[ProbeResult]:
    """The schedule: every registered mail server of every client not probed recently."""
    from aupguard.registry import list_clients

    results: list[ProbeResult] = []
    for client in list_clients(session):
        for server in client.mail_servers:
            try:
                results.extend(probe(session, settings, server, at=at))
            except InputError as exc:
                results.append(ProbeResult(host=server, address="", port=0, verdict="refused",
                                           client_id=client.id, error=str(exc)))
    return results


def recent_probes(session: Session, limit: int = 50) -> list[SmtpProbe]:
    return list(session.execute(select(SmtpProbe).order_by(SmtpProbe.id.desc()).limit(limit)).scalars())
