"""The REST API under /api: JSON for everything the console does.

Authenticate with ``Authorization: Bearer <token>`` (``aupguard tokens
create``); a console session cookie also works, with the ``X-CSRF-Token``
header on changes. Errors are ``{"detail": "..."}`` with 400/401/403/404/409/503.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from aupguard.store.types import utcnow
from aupguard.web import auth, data
from aupguard.web.auth import Perm, Principal
from aupguard.web.deps import requires
from aupguard.web.stages import StageUnavailable

router = APIRouter(prefix="/api")

VIEW = Depends(requires(Perm.VIEW))
WORK = Depends(requires(Perm.WORK))
LEGAL = Depends(requires(Perm.LEGAL))
AUDIT = Depends(requires(Perm.AUDIT))
ADMIN = Depends(requires(Perm.ADMIN))


def _run(request: Request, fn, *args, **kwargs):
    """Call `fn(session, settings, ...)` in one transaction."""
    state = request.app.state
    with state.store.session() as session:
        return fn(session, state.settings, *args, **kwargs)


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=20_000)


class StatusIn(BaseModel):
    status: str = Field(min_length=1, max_length=40)
    note: str = Field("", max_length=20_000)


class AssignIn(BaseModel):
    owner: str = Field(min_length=1, max_length=100)


class ReportIn(BaseModel):
    authority: str = Field(min_length=1, max_length=200)
    report_id: str = Field(min_length=1, max_length=200)
    at: datetime | None = Field(None, description="When the report was made (default: now).")


class PriorityIn(BaseModel):
    priority: str = Field(min_length=1, max_length=20)


class MergeIn(BaseModel):
    source_ids: list[int] = Field(min_length=1, max_length=100,
                                  description="Cases whose incidents move into this one.")


class SplitIn(BaseModel):
    incident_ids: list[int] = Field(min_length=1, max_length=1000,
                                    description="Incidents that move to a new case.")


class LiftIn(BaseModel):
    note: str = Field("", max_length=2000)


class IntakeAssignIn(BaseModel):
    client_id: str = Field(min_length=1, max_length=100)


class IntakeDismissIn(BaseModel):
    reason: str = Field("", max_length=2000)


@router.get("/me", tags=["auth"])
def me(who: Principal = VIEW) -> dict[str, Any]:
    """Who the credentials belong to and what they may do."""
    return {"name": who.name, "role": who.role, "via": who.via,
            "permissions": sorted(p.value for p in Perm if who.holds(p))}


# --- cases -------------------------------------------------------------------

@router.get("/cases", tags=["cases"])
def list_cases(request: Request, status: str | None = None, client_id: str | None = None,
               clause_id: str | None = None, who: Principal = VIEW) -> list[dict]:
    """Cases, newest first; restricted (content.csam) cases only for the legal role."""
    return _run(request, lambda s, st: data.list_cases(s, st, who, status=status,
                                                       client_id=client_id, clause_id=clause_id))


@router.get("/cases/{case_id}", tags=["cases"])
def get_case(request: Request, case_id: int, who: Principal = VIEW) -> dict:
    return _run(request, lambda s, st: data.get_case(s, st, who, case_id))


@router.get("/cases/{case_id}/timeline", tags=["cases"])
def case_timeline(request: Request, case_id: int, who: Principal = VIEW) -> list[dict]:
    return _run(request, lambda s, st: data.case_timeline(s, st, who, case_id))


@router.get("/cases/{case_id}/incidents", tags=["cases"])
def case_incidents(request: Request, case_id: int, who: Principal = VIEW) -> list[dict]:
    """The incidents grouped into the case (evidence as hashes only when restricted)."""
    return _run(request, lambda s, st: data.case_incidents(s, st, who, case_id))


@router.get("/cases/{case_id}/evidence", tags=["cases"])
def case_evidence(request: Request, case_id: int, who: Principal = VIEW) -> list[dict]:
    """Evidence items: SHA-256, kind, size, legal hold (never the content)."""
    return _run(request, lambda s, st: data.case_evidence(s, st, who, case_id))


@router.get("/cases/{case_id}/notice", tags=["cases"])
def notice_preview(request: Request, case_id: int, who: Principal = VIEW) -> dict:
    """The notice that `notify` would send now: recipients, subject, body."""
    return _run(request, lambda s, st: data.notice_preview(s, st, who, case_id))


@router.post("/cases/{case_id}/notes", tags=["cases"])
def add_note(request: Request, case_id: int, body: NoteIn, who: Principal = WORK) -> dict:
    return _run(request, lambda s, st: data.case_action(s, st, who, case_id, "note", text=body.text))


@router.post("/cases/{case_id}/status", tags=["cases"])
def set_status(request: Request, case_id: int, body: StatusIn, who: Principal = WORK) -> dict:
    return _run(request, lambda s, st: data.case_action(s, st, who, case_id, "status",
                                                        status=body.status, note=body.note))


@router.post("/cases/{case_id}/assign", tags=["cases"])
def assign(request: Request, case_id: int, body: AssignIn, who: Principal = WORK) -> dict:
    return _run(request, lambda s, st: data.case_action(s, st, who, case_id, "assign",
                                                        owner=body.owner))


@router.post("/cases/{case_id}/notify", tags=["cases"])
def notify(request: Request, case_id: int, who: Principal = WORK) -> dict:
    """Queue the notice to the client and up its reseller chain."""
    return _run(request, lambda s, st: data.case_action(s, st, who, case_id, "notify"))


@router.post("/cases/{case_id}/escalate", tags=["cases"])
def escalate(request: Request, case_id: int, who: Principal = WORK) -> dict:
    """Take the next step of the clause's escalation ladder now."""
    return _run(request, lambda s, st: data.case_action(s, st, who, case_id, "escalate"))


@router.post("/cases/{case_id}/priority", tags=["cases"])
def set_priority(request: Request, case_id: int, body: PriorityIn, who: Principal = WORK) -> dict:
    return _run(request, lambda s, st: data.case_action(s, st, who, case_id, "priority",
                                                        priority=body.priority))


@router.post("/cases/{case_id}/merge", tags=["cases"])
def merge(request: Request, case_id: int, body: MergeIn, who: Principal = WORK) -> dict:
    """Merge other cases of the same client into this one."""
    return _run(request, lambda s, st: data.case_action(s, st, who, case_id, "merge",
                                                        source_ids=body.source_ids))


@router.post("/cases/{case_id}/split", tags=["cases"])
def split(request: Request, case_id: int, body: SplitIn, who: Principal = WORK) -> dict:
    """Move some incidents of this case into a new case; returns the new case."""
    return _run(request, lambda s, st: data.case_action(s, st, who, case_id, "split",
                                                        incident_ids=body.incident_ids))


@router.get("/cases/{case_id}/export", tags=["cases"])
def export(request: Request, case_id: int, background: BackgroundTasks,
           who: Principal = LEGAL) -> FileResponse:
    """The signed law-enforcement bundle (tar.gz: evidence, timeline, hashes, custody); legal role."""
    workdir = tempfile.mkdtemp(prefix="aupguard-export-")
    background.add_task(shutil.rmtree, workdir, True)
    path = _run(request, lambda s, st: data.export_case(s, st, who, case_id, workdir))
    return FileResponse(path, media_type="application/gzip", filename=Path(path).name,
                        background=background)


@router.post("/cases/{case_id}/report", tags=["cases"])
def mandatory_report(request: Request, case_id: int, body: ReportIn, who: Principal = LEGAL) -> dict:
    """Record the mandatory report to the authority (restricted cases; legal role)."""
    return _run(request, lambda s, st: data.case_action(
        s, st, who, case_id, "report", authority=body.authority, report_id=body.report_id,
        at=body.at or utcnow()))


# --- incidents ---------------------------------------------------------------

@router.get("/incidents", tags=["incidents"])
def list_incidents(request: Request, status: str | None = None, client_id: str | None = None,
                   clause_id: str | None = None, since: datetime | None = None,
                   limit: int = Query(500, ge=1, le=10_000), who: Principal = VIEW) -> list[dict]:
    return _run(request, lambda s, st: data.list_incidents(
        s, st, who, status=status, client_id=client_id, clause_id=clause_id, since=since,
        limit=limit))


@router.get("/incidents/{incident_id}", tags=["incidents"])
def get_incident(request: Request, incident_id: int, who: Principal = VIEW) -> dict:
    return _run(request, lambda s, st: data.get_incident(s, st, who, incident_id))


# --- registry ----------------------------------------------------------------

@router.get("/clients", tags=["clients"])
def list_clients(request: Request, who: Principal = VIEW) -> list[dict]:
    return _run(request, lambda s, st: data.list_clients(s))


@router.get("/clients/{client_id}", tags=["clients"])
def get_client(request: Request, client_id: str, who: Principal = VIEW) -> dict:
    """The client, its reseller chain, assignments, cases, strikes and per-ASN report."""
    return _run(request, lambda s, st: data.client_detail(s, st, who, client_id))


class StrikeWithdrawIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/clients/{client_id}/strikes/{strike_id}/withdraw", tags=["clients"])
def withdraw_strike(request: Request, client_id: str, strike_id: int, body: StrikeWithdrawIn,
                    who: Principal = WORK) -> dict:
    """Withdraw a copyright strike (counter-notice upheld, notice retracted); returns the ledger."""
    return _run(request, lambda s, st: data.withdraw_strike(s, st, who, client_id, strike_id,
                                                            body.reason))


@router.get("/who", tags=["clients"])
def who_is(request: Request, address: str = Query(..., max_length=64),
           at: datetime | None = None, port: int | None = Query(None, ge=0, le=65535),
           who: Principal = VIEW) -> dict:
    """Which client held `address` (and `port`) at time `at` (default: now)."""
    when = at or utcnow()
    return _run(request, lambda s, st: data.who_is(s, address, when, port))


# --- intake ------------------------------------------------------------------

@router.get("/intake/queue", tags=["intake"])
def review_queue(request: Request, who: Principal = VIEW) -> list[dict]:
    """Complaint events that could not be attributed or parsed and wait for a person."""
    return _run(request, lambda s, st: data.review_queue(s, st, who))


@router.get("/intake/messages", tags=["intake"])
def intake_messages(request: Request, status: str | None = Query(None, max_length=20),
                    limit: int = Query(50, ge=1, le=1000), who: Principal = VIEW) -> list[dict]:
    """Received complaints, newest first: reporter, subject, parser, status, parse error."""
    return _run(request, lambda s, st: data.intake_messages(s, status, limit))


@router.post("/intake/events/{event_id}/assign", tags=["intake"])
def intake_assign(request: Request, event_id: int, body: IntakeAssignIn,
                  who: Principal = WORK) -> Any:
    return _run(request, lambda s, st: data.intake_assign(s, who, event_id, body.client_id))


@router.post("/intake/events/{event_id}/dismiss", tags=["intake"])
def intake_dismiss(request: Request, event_id: int, body: IntakeDismissIn,
                   who: Principal = WORK) -> Any:
    return _run(request, lambda s, st: data.intake_dismiss(s, who, event_id, body.reason))


# --- detection, reputation, accounting, policy, audit ------------------------

@router.get("/mitigations", tags=["detection"])
def mitigations(request: Request, who: Principal = VIEW) -> list[dict]:
    return _run(request, lambda s, st: data.mitigations(s))


class WithdrawIn(BaseModel):
    reason: str = Field("", max_length=2000)


@router.post("/mitigations/{mitigation_id}/approve", tags=["detection"])
def approve_mitigation(request: Request, mitigation_id: int, who: Principal = WORK) -> dict:
    """Approve a proposed blackhole / FlowSpec mitigation (the speaker then announces it)."""
    return _run(request, lambda s, st: data.mitigation_action(s, who, mitigation_id, "approve"))


@router.post("/mitigations/{mitigation_id}/withdraw", tags=["detection"])
def withdraw_mitigation(request: Request, mitigation_id: int, body: WithdrawIn,
                        who: Principal = WORK) -> dict:
    return _run(request, lambda s, st: data.mitigation_action(s, who, mitigation_id, "withdraw",
                                                              body.reason))


@router.get("/flows/rate", tags=["detection"])
def flows_rate(request: Request, who: Principal = VIEW) -> dict:
    """The collector's current flow rate (from its stats file); 503 when no collector wrote one."""
    rate = data.flow_rate(request.app.state.settings, request.app.state.flow_samples)
    if rate is None:
        raise StageUnavailable("flows", "collector stats", "no collector stats file yet")
    return rate


@router.post("/orders/{order_id}/lift", tags=["cases"])
def lift_order(request: Request, order_id: int, body: LiftIn, who: Principal = WORK) -> dict:
    """Lift an enforcement order (the client fixed the problem)."""
    return _run(request, lambda s, st: data.lift_order(s, st, who, order_id, body.note))


@router.get("/orders", tags=["cases"])
def enforcement_orders(request: Request, who: Principal = VIEW) -> list[dict]:
    """Enforcement orders (port-25 block, rate limit, suspension, termination) from escalation."""
    return _run(request, lambda s, st: data.enforcement_orders(s, st, who))


@router.get("/listings", tags=["reputation"])
def listings(request: Request, who: Principal = VIEW) -> list[dict]:
    """Current DNSBL listings of our address space."""
    return _run(request, lambda s, st: data.listings(s))


@router.get("/accounting/asn-report", tags=["accounting"])
def asn_report(request: Request, client_id: str | None = None,
               month: str | None = Query(None, pattern=r"^\d{4}-\d{2}$"),
               who: Principal = VIEW) -> Any:
    """Per client x ASN 95th percentile against 10% of the CDR (month: YYYY-MM, default now)."""
    state = request.app.state
    return data.asn_report(state.settings, state.store, client_id=client_id, month=month)


@router.get("/policy/versions", tags=["policy"])
def policy_versions(request: Request, who: Principal = VIEW) -> list[dict]:
    return _run(request, lambda s, st: data.policy_versions(s))


@router.get("/policy/acceptances", tags=["policy"])
def policy_acceptances(request: Request, version: str | None = Query(None, max_length=50),
                       who: Principal = VIEW) -> list[dict]:
    """Which client accepted which AUP version (first activity after posting), and when."""
    return _run(request, lambda s, st: data.acceptances(s, version))


@router.get("/policy/clauses/{clause_id}", tags=["policy"])
def clause_at(request: Request, clause_id: str, at: datetime | None = None,
              who: Principal = VIEW) -> dict:
    """The clause's text in the AUP version in force at `at` (default: now)."""
    when = at or utcnow()
    return _run(request, lambda s, st: data.clause_at(s, clause_id, when))


@router.get("/audit/verify", tags=["audit"])
def audit_verify(request: Request, who: Principal = AUDIT) -> dict:
    """Walk the hash-chained audit log; `ok` false names the first broken row."""
    return _run(request, lambda s, st: data.audit_verify(s))


@router.get("/users", tags=["auth"])
def users(request: Request, who: Principal = ADMIN) -> list[dict]:
    def fetch(s, st):
        return [{"name": u.name, "role": u.role, "disabled": u.disabled,
                 "created_at": u.created_at.isoformat(),
                 "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None}
                for u in auth.list_users(s)]
    return _run(request, fetch)
