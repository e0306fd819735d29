"""What the API and the console both show and do, with the access rules applied.

Every function takes the caller (:class:`~aupguard.web.auth.Principal`) and
returns plain JSON-safe data, so the REST API and the HTML pages cannot drift
apart on who may see what: restricted (content.csam) cases are invisible to
every role but legal, and their evidence is reduced to hashes and metadata
for everyone, legal included.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from aupguard.errors import AupguardError
from aupguard.web.auth import Principal
from aupguard.web.stages import StageUnavailable, func, plain

CLOSED_STATUSES = {"closed", "resolved", "terminated"}
# Evidence fields that identify an item without revealing its content.
HASH_ONLY_FIELDS = ("sha256", "hash", "digest", "size", "bytes", "kind", "type", "content_type",
                    "received_at", "stored_at", "id", "evidence_id")


class NotFound(AupguardError):
    """The thing asked for does not exist (or the caller may not know it does)."""


class Forbidden(AupguardError):
    """The caller's role may not do this."""


def restricted_clauses(settings) -> set[str]:
    return set(getattr(settings.cases, "restricted_clauses", None) or ["content.csam"])


def is_restricted(settings, item: dict[str, Any]) -> bool:
    return bool(item.get("restricted")) or item.get("clause_id") in restricted_clauses(settings)


def hashes_only(evidence: Any) -> list[dict[str, Any]]:
    items = evidence if isinstance(evidence, list) else [evidence] if evidence else []
    out = []
    for item in items:
        if isinstance(item, dict):
            out.append({k: item[k] for k in HASH_ONLY_FIELDS if k in item})
        else:
            out.append({"note": "withheld"})
    return out


def _restrict_incident(settings, row: dict[str, Any]) -> dict[str, Any]:
    if not is_restricted(settings, row):
        return row
    row = dict(row)
    row["evidence"] = hashes_only(row.get("evidence"))
    for key in ("summary", "victim", "metrics"):
        if key in row:
            row[key] = "[restricted]" if isinstance(row[key], str) else {}
    return row


# --- cases -------------------------------------------------------------------

def list_cases(session: Session, settings, who: Principal, *, status: str | None = None,
               client_id: str | None = None, clause_id: str | None = None,
               limit: int = 1000) -> list[dict]:
    rows = func("cases", "list_cases")(session, status=status or None, client_id=client_id or None,
                                       clause_id=clause_id or None,
                                       restricted_ok=who.sees_restricted, settings=settings,
                                       limit=limit)
    cases = [plain(r) for r in rows]
    if not who.sees_restricted:  # defence in depth: never rely on the stage alone
        cases = [c for c in cases if not is_restricted(settings, c)]
    return cases


def _case_row(session: Session, settings, who: Principal, case_id: int) -> dict[str, Any]:
    row = func("cases", "get_case")(session, case_id, settings=settings)
    if row is None:
        raise NotFound(f"no case {case_id}")
    case = plain(row)
    if is_restricted(settings, case) and not who.sees_restricted:
        raise Forbidden(f"case {case_id} is restricted: only the legal role may open it")
    return case


def get_case(session: Session, settings, who: Principal, case_id: int) -> dict[str, Any]:
    return _case_row(session, settings, who, case_id)


def case_timeline(session: Session, settings, who: Principal, case_id: int) -> list[dict]:
    _case_row(session, settings, who, case_id)
    return [plain(e) for e in func("cases", "timeline")(session, case_id)]


def case_incidents(session: Session, settings, who: Principal, case_id: int) -> list[dict]:
    from sqlalchemy import select

    from aupguard.incidents import IncidentRow

    case = _case_row(session, settings, who, case_id)
    rows = session.execute(select(IncidentRow).where(IncidentRow.case_id == case_id)
                           .order_by(IncidentRow.first_seen)).scalars()
    out = [plain(r) for r in rows]
    if is_restricted(settings, case):
        out = [dict(_restrict_incident(settings, {**r, "restricted": True})) for r in out]
    return out


def notice_preview(session: Session, settings, who: Principal, case_id: int) -> dict[str, Any]:
    _case_row(session, settings, who, case_id)
    preview = func("cases", "preview_notice")(session, settings, case_id)
    if isinstance(preview, tuple):  # the (to, cc, subject, body) shape of the first draft
        to, cc, subject, body = preview
        return {"to": plain(to), "cc": plain(cc), "subject": str(subject), "body": str(body)}
    out = plain(preview)
    out["body"], out["subject"] = str(out.get("body", "")), str(out.get("subject", ""))
    return out


def case_evidence(session: Session, settings, who: Principal, case_id: int) -> list[dict]:
    """Evidence items of the case as hashes and metadata (the cases stage never returns content)."""
    _case_row(session, settings, who, case_id)
    return [plain(e) for e in func("cases", "case_evidence")(session, settings, case_id)]


def case_extras(session: Session, settings, who: Principal, case_id: int) -> dict[str, Any]:
    """Enforcement orders, mandatory reports and allowed status moves of a case."""
    case = _case_row(session, settings, who, case_id)
    out: dict[str, Any] = {}
    for key, name in (("orders", "orders"), ("reports", "mandatory_reports")):
        try:
            out[key] = [plain(x) for x in func("cases", name)(session, case_id=case_id)]
        except StageUnavailable:
            out[key] = None
    try:
        out["next_statuses"] = list(func("cases", "TRANSITIONS").get(case.get("status"), ()))
    except StageUnavailable:
        out["next_statuses"] = []
    return out


def case_action(session: Session, settings, who: Principal, case_id: int, action: str,
                **args: Any) -> dict[str, Any]:
    """Run one case action as the caller; returns the case afterwards."""
    _case_row(session, settings, who, case_id)
    actor = who.actor
    for key in ("text", "note"):
        if len(args.get(key) or "") > settings.web.max_note_chars:
            raise AupguardError(f"the {key} is longer than {settings.web.max_note_chars} characters "
                                "([web] max_note_chars); shorten it or attach a file instead")
    if action == "note":
        func("cases", "add_note")(session, case_id, args["text"], actor)
    elif action == "status":
        func("cases", "set_status")(session, case_id, args["status"], actor, note=args.get("note", ""))
    elif action == "assign":
        func("cases", "assign")(session, case_id, args["owner"], actor)
    elif action == "notify":
        func("cases", "send_notice")(session, settings, case_id, actor)
    elif action == "escalate":
        func("cases", "escalate")(session, settings, case_id, actor)
    elif action == "priority":
        func("cases", "set_priority")(session, case_id, args["priority"], actor)
    elif action == "merge":
        for source in args["source_ids"]:  # merging a case one may not see would reveal it
            _case_row(session, settings, who, int(source))
        func("cases", "merge")(session, case_id, list(args["source_ids"]), actor)
    elif action == "split":
        new = func("cases", "split")(session, case_id, list(args["incident_ids"]), actor)
        session.flush()
        return plain(new)
    elif action == "report":
        func("cases", "record_mandatory_report")(session, case_id, args["authority"],
                                                 args["report_id"], args["at"], actor,
                                                 settings=settings)
    else:  # pragma: no cover - routes only pass the names above
        raise ValueError(f"unknown case action {action!r}")
    session.flush()
    return plain(func("cases", "get_case")(session, case_id, settings=settings))


def export_case(session: Session, settings, who: Principal, case_id: int, directory) -> str:
    """Write the signed law-enforcement bundle of a case; returns its path."""
    _case_row(session, settings, who, case_id)
    out = f"{directory}/aupguard-case-{case_id}.tar.gz"
    return str(func("cases", "export_case")(session, settings, case_id, out, actor=who.actor))


def lift_order(session: Session, settings, who: Principal, order_id: int, note: str) -> Any:
    visible = {o["id"] for o in enforcement_orders(session, settings, who)}
    if order_id not in visible:
        raise NotFound(f"no enforcement order {order_id}")
    return plain(func("cases", "lift_order")(session, order_id, who.actor, note))


def withdraw_strike(session: Session, settings, who: Principal, client_id: str, strike_id: int,
                    reason: str) -> Any:
    """Withdraw a repeat-infringer strike (counter-notice upheld); the row stays, audited."""
    ledger = strikes(session, settings, client_id)
    if strike_id not in {e["id"] for e in ledger.get("entries", [])}:
        raise NotFound(f"client {client_id} has no strike {strike_id}")
    func("cases", "withdraw_strike")(session, strike_id, reason, who.actor)
    session.flush()
    return strikes(session, settings, client_id)


def strikes(session: Session, settings, client_id: str) -> Any:
    return plain(func("cases", "strikes")(session, client_id, settings=settings))


# --- incidents ---------------------------------------------------------------

def list_incidents(session: Session, settings, who: Principal, *, status: str | None = None,
                   client_id: str | None = None, clause_id: str | None = None,
                   since: datetime | None = None, limit: int = 500) -> list[dict]:
    from aupguard import incidents

    rows = incidents.list_incidents(session, status=status or None, client_id=client_id or None,
                                    clause_id=clause_id or None, since=since, limit=limit)
    out = []
    for row in rows:
        item = plain(row)
        if is_restricted(settings, item):
            if not who.sees_restricted:
                continue
            item = _restrict_incident(settings, item)
        out.append(item)
    return out


def get_incident(session: Session, settings, who: Principal, incident_id: int) -> dict[str, Any]:
    from aupguard import incidents

    row = incidents.get(session, incident_id)
    if row is None:
        raise NotFound(f"no incident {incident_id}")
    item = plain(row)
    if is_restricted(settings, item):
        if not who.sees_restricted:
            raise Forbidden(f"incident {incident_id} is restricted: only the legal role may open it")
        item = _restrict_incident(settings, item)
    return item


# --- registry ----------------------------------------------------------------

def list_clients(session: Session) -> list[dict]:
    return [plain(c) for c in func("registry", "list_clients")(session)]


def client_detail(session: Session, settings, who: Principal, client_id: str) -> dict[str, Any]:
    client = func("registry", "get_client")(session, client_id)
    if client is None:
        raise NotFound(f"no client {client_id!r}")
    out: dict[str, Any] = {"client": plain(client), "missing": []}
    try:
        out["chain"] = [plain(c) for c in func("registry", "reseller_chain")(session, client_id)]
    except StageUnavailable:
        out["chain"] = []
    try:
        out["assignments"] = [plain(a) for a in
                              func("registry", "list_assignments")(session, client_id=client_id)]
    except StageUnavailable:
        out["assignments"] = None
        out["missing"].append("assignments")
    try:
        out["cases"] = list_cases(session, settings, who, client_id=client_id)
    except StageUnavailable:
        out["cases"] = None
        out["missing"].append("cases")
    try:
        out["strikes"] = strikes(session, settings, client_id)
    except StageUnavailable:
        out["strikes"] = None
        out["missing"].append("strikes")
    try:
        out["listings"] = listings(session, client_id=client_id)
    except StageUnavailable:
        out["listings"] = None
    out["incidents"] = list_incidents(session, settings, who, client_id=client_id, limit=50)
    return out


def who_is(session: Session, address: str, at: datetime, port: int | None) -> dict[str, Any]:
    import ipaddress

    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise AupguardError(f"{address!r} is not an IP address") from None
    index = func("registry", "load_index")(session)
    return plain(index.who(address, at, port))


# --- intake ------------------------------------------------------------------

def review_queue(session: Session, settings, who: Principal) -> list[dict]:
    """Complaint events waiting for a person; restricted clauses: legal only, hashes only."""
    out = []
    for event in func("intake", "review_queue")(session):
        item = plain(event)
        if is_restricted(settings, item):
            if not who.sees_restricted:
                continue
            for key in ("url", "excerpt", "domain", "extra"):
                if key in item:
                    item[key] = "[restricted]" if isinstance(item[key], str) else {}
        out.append(item)
    return out


MESSAGE_FIELDS = ("id", "reference", "received_at", "source", "reporter", "subject", "parser",
                  "status", "event_count", "error", "trust", "sha256", "duplicate_of")


def intake_messages(session: Session, status: str | None = None, limit: int = 50) -> list[dict]:
    """Recently received complaints (metadata; the raw mail stays in the evidence store)."""
    rows = func("intake", "list_messages")(session, status=status or None, limit=limit)
    return [{k: v for k, v in plain(r).items() if k in MESSAGE_FIELDS} for r in rows]


def intake_assign(session: Session, who: Principal, event_id: int, client_id: str) -> Any:
    return plain(func("intake", "assign_event")(session, event_id, client_id, who.actor))


def intake_dismiss(session: Session, who: Principal, event_id: int, reason: str) -> Any:
    return plain(func("intake", "dismiss_event")(session, event_id, who.actor, reason))


def enforcement_orders(session: Session, settings, who: Principal) -> list[dict]:
    """Restriction / suspension / termination orders issued by case escalation."""
    rows = [plain(o) for o in func("cases", "orders")(session)]
    if who.sees_restricted:
        return rows
    visible = {c["id"] for c in list_cases(session, settings, who)}
    return [o for o in rows if o.get("case_id") in visible]


# --- detection, reputation, accounting, policy ------------------------------

def mitigations(session: Session) -> list[dict]:
    """BGP mitigations (RTBH / FlowSpec) announced by the detection stage."""
    mod_fn = None
    for name in ("list_mitigations", "active_mitigations", "mitigations"):
        try:
            mod_fn = func("mitigate", name)
            break
        except StageUnavailable:
            continue
    if mod_fn is None:
        raise StageUnavailable("mitigate", "list_mitigations")
    return [plain(m) for m in mod_fn(session)]


def mitigation_action(session: Session, who: Principal, mitigation_id: int, action: str,
                      reason: str = "") -> dict[str, Any]:
    """Approve a proposed BGP mitigation, or ask for its withdrawal."""
    if action == "approve":
        row = func("mitigate", "approve")(session, mitigation_id, who.actor)
    elif action == "withdraw":
        row = func("mitigate", "request_withdraw")(session, mitigation_id, who.actor, reason)
    else:  # pragma: no cover - routes only pass the names above
        raise ValueError(f"unknown mitigation action {action!r}")
    return plain(row)


def listings(session: Session, client_id: str | None = None) -> list[dict]:
    fn = func("reputation", "current_listings")
    rows = fn(session, client_id=client_id) if client_id else fn(session)
    return [plain(x) for x in rows]


def asn_report(settings, store, *, client_id: str | None = None,
               month: str | None = None) -> dict[str, Any]:
    """Per client x ASN percentile vs 10% of CDR for a month (default: this month, UTC).

    Runs outside any open transaction: the report reads the Parquet flow store
    with DuckDB and opens its own short session for the registry.
    """
    month = month or datetime.now(UTC).strftime("%Y-%m")
    report = func("accounting", "asn_report")(settings, store, month, client_id=client_id or None)
    return plain(report)


def policy_versions(session: Session) -> list[dict]:
    for name in ("versions", "list_versions"):
        try:
            return [plain(v) for v in func("policy", name)(session)]
        except StageUnavailable:
            continue
    raise StageUnavailable("policy", "list_versions")


def acceptances(session: Session, version: str | None = None) -> list[dict]:
    """Acceptance by continued use: each client's first activity after a version was posted."""
    return [plain(a) for a in func("policy", "acceptances")(session, version=version or None)]


def clause_at(session: Session, clause_id: str, at: datetime) -> dict[str, Any]:
    clause = func("policy", "clause_at")(session, clause_id, at)
    if clause is None:
        raise NotFound(f"no clause {clause_id!r} in force at {at.isoformat()}")
    return plain(clause)


def audit_verify(session: Session) -> dict[str, Any]:
    from aupguard.store import audit

    result = audit.verify(session)
    return {"ok": result.ok, "checked": result.checked, "broken_at": result.broken_at,
            "reason": result.reason}


# --- dashboard ---------------------------------------------------------------

def dashboard(session: Session, settings, who: Principal, days: int = 14,
              now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    since = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    out: dict[str, Any] = {"missing": []}
    try:
        cases = list_cases(session, settings, who, limit=100_000)
        open_cases = [c for c in cases if c.get("status") not in CLOSED_STATUSES]
        out["open_by_clause"] = Counter(c.get("clause_id", "?") for c in open_cases).most_common()
        out["open_cases"] = len(open_cases)
    except StageUnavailable:
        out["open_by_clause"], out["open_cases"] = None, None
        out["missing"].append("cases")
    incidents = _incident_facts(session, settings, who, since)
    per_day = Counter(i["last_seen"][:10] for i in incidents)
    out["incidents_per_day"] = [((since + timedelta(days=d)).date().isoformat(),
                                 per_day.get((since + timedelta(days=d)).date().isoformat(), 0))
                                for d in range(days)]
    out["top_clients"] = Counter(i["client_id"] for i in incidents
                                 if i.get("client_id")).most_common(10)
    out["unattributed"] = sum(1 for i in incidents if not i.get("client_id"))
    return out


def _incident_facts(session: Session, settings, who: Principal, since: datetime) -> list[dict]:
    """Only the three columns the dashboard counts (not the evidence JSON of every row)."""
    from sqlalchemy import select

    from aupguard.incidents import IncidentRow

    hidden = set() if who.sees_restricted else restricted_clauses(settings)
    rows = session.execute(select(IncidentRow.last_seen, IncidentRow.client_id,
                                  IncidentRow.clause_id).where(IncidentRow.last_seen >= since))
    return [{"last_seen": at.isoformat(), "client_id": client}
            for at, client, clause in rows if clause not in hidden]


def flow_rate(settings, samples: list[tuple[float, int]]) -> dict[str, Any] | None:
    """The collector's flow rate from the stats file it rewrites every few seconds.

    `samples` keeps the last two distinct (time, flows_out) readings across
    calls (the app holds it), so the rate is over the collector's latest
    interval; with one reading, the average since the collector started.
    """
    import time

    try:
        stats_path = func("flows", "stats_path")
        read_stats_file = func("flows", "read_stats_file")
    except StageUnavailable:
        return None
    try:
        stats = read_stats_file(stats_path(settings))
        if not stats:
            return None
        at, total = float(stats["time"]), int(stats["flows_out"])
        started = float(stats.get("started_at") or at)
    except (KeyError, TypeError, ValueError, OSError):  # a live gauge never breaks the page
        return None
    if not samples or samples[-1][0] != at:
        samples.append((at, total))
        del samples[:-2]
    if len(samples) == 2 and samples[1][0] > samples[0][0]:
        (t0, n0), (t1, n1) = samples
        rate, basis = (n1 - n0) / (t1 - t0), f"over the last {t1 - t0:.0f} s"
    else:
        rate, basis = total / max(at - started, 1.0), "average since the collector started"
    age = time.time() - at
    return {"flows_per_s": round(rate, 1), "basis": basis, "flows_total": total,
            "running": bool(stats.get("running")) and age < 60, "age_s": round(age)}
