"""The web console: server-rendered pages for the abuse desk, and the client self-help page.

Every page is a Jinja2 template with autoescape on (complaint contents are
hostile); forms post back here with the session's CSRF token and redirect
(post/redirect/get) with a one-shot flash message.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Annotated, Any
from urllib.parse import quote, urlparse

import typer
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from aupguard.cli_support import parse_time
from aupguard.errors import AupguardError
from aupguard.store.types import utcnow
from aupguard.web import auth, charts, data
from aupguard.web.auth import Perm, Principal
from aupguard.web.deps import FLASH_COOKIE, LOGIN_CSRF_COOKIE, SESSION_COOKIE, requires
from aupguard.web.stages import StageUnavailable, available, func, plain

router = APIRouter(include_in_schema=False)

VIEW = Depends(requires(Perm.VIEW, html=True))
WORK = Depends(requires(Perm.WORK, html=True))
LEGAL = Depends(requires(Perm.LEGAL, html=True))
AUDIT = Depends(requires(Perm.AUDIT, html=True))

# Errors a form action reports back to the user as a flash message.
ACTION_ERRORS = (AupguardError, ValueError, LookupError, PermissionError, StageUnavailable)


def render(request: Request, template: str, who: Principal | None, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    state = request.app.state
    flash = state.signer.read_flash(request.cookies.get(FLASH_COOKIE))
    response = state.templates.TemplateResponse(
        request, template, {"who": who, "csrf": who.csrf if who else "", "flash": flash,
                            "nav": _nav(who), **context}, status_code=status_code)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def _nav(who: Principal | None) -> list[tuple[str, str]]:
    if who is None:
        return []
    items = [("/", "Dashboard"), ("/cases", "Cases"), ("/incidents", "Incidents"),
             ("/clients", "Clients"), ("/intake", "Intake queue"), ("/mitigations", "Mitigations"),
             ("/listings", "Listings"), ("/policy", "Policy")]
    if who.holds(Perm.AUDIT):
        items.append(("/audit", "Audit"))
    items.append(("/docs", "API"))
    return items


def back(request: Request, to: str, message: str, kind: str = "ok") -> RedirectResponse:
    response = RedirectResponse(to, status_code=303)
    response.set_cookie(FLASH_COOKIE, request.app.state.signer.flash(message, kind), path="/",
                        httponly=True, samesite="strict",
                        secure=request.app.state.settings.web.cookie_secure)
    return response


def _in_tx(request: Request, fn):
    state = request.app.state
    with state.store.session() as session:
        return fn(session, state.settings)


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths: an open redirect after login helps phishers."""
    if not target:
        return "/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


# --- public: health, login ----------------------------------------------------

@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    cookie, nonce = request.app.state.signer.login_csrf()
    response = render(request, "login.html", None, next=_safe_next(next), login_csrf=nonce)
    response.set_cookie(LOGIN_CSRF_COOKIE, cookie, path="/", httponly=True, samesite="strict",
                        secure=request.app.state.settings.web.cookie_secure, max_age=3600)
    return response


@router.post("/login")
async def login(request: Request, username: str = Form(..., max_length=100),
                password: str = Form(..., max_length=1000), csrf: str = Form(""),
                next: str = Form("/")) -> Response:
    state = request.app.state
    if not state.signer.check_login_csrf(request.cookies.get(LOGIN_CSRF_COOKIE), csrf):
        return back(request, "/login", "The login form expired; please try again.", "error")
    if _too_many_failures(state, username):
        return back(request, "/login", "Too many failed logins for this user; wait a minute.",
                    "error")

    def check(session, settings):
        user = auth.authenticate(session, username, password)
        return state.signer.session_cookie(user) if user else None

    cookie = await run_in_threadpool(_in_tx, request, check)
    if cookie is None:
        _record_failure(state, username)
        return back(request, "/login", "Wrong user name or password.", "error")
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, cookie, path="/", httponly=True, samesite="strict",
                        secure=state.settings.web.cookie_secure,
                        max_age=state.settings.web.session_hours * 3600)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


def _too_many_failures(state, username: str) -> bool:
    window = state.login_failures.get(username)
    if not window:
        return False
    while window and window[0] < time.monotonic() - 60:
        window.popleft()
    return len(window) >= state.settings.web.login_attempts_per_minute


def _record_failure(state, username: str) -> None:
    if len(state.login_failures) > 10_000:  # bound memory under a spray of names
        state.login_failures.clear()
    state.login_failures.setdefault(username, deque()).append(time.monotonic())


@router.post("/logout")
def logout(request: Request, who: Principal = VIEW) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- dashboard ----------------------------------------------------------------

@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, who: Principal = VIEW) -> HTMLResponse:
    board = _in_tx(request, lambda s, st: data.dashboard(s, st, who))
    board["flow_rate"] = data.flow_rate(request.app.state.settings,
                                        request.app.state.flow_samples)
    chart_cases = (charts.bar_chart(board["open_by_clause"], title="Open cases by clause",
                                    horizontal=True)
                   if board["open_by_clause"] is not None else None)
    chart_incidents = charts.bar_chart(board["incidents_per_day"],
                                       title="Incidents per day (last 14 days)")
    chart_clients = charts.bar_chart(board["top_clients"], title="Top offending clients",
                                     horizontal=True)
    return render(request, "dashboard.html", who, board=board, chart_cases=chart_cases,
                  chart_incidents=chart_incidents, chart_clients=chart_clients)


# --- cases ---------------------------------------------------------------------

@router.get("/cases", response_class=HTMLResponse)
def cases_page(request: Request, status: str = "", clause_id: str = "", client_id: str = "",
               who: Principal = VIEW) -> HTMLResponse:
    cases = _in_tx(request, lambda s, st: data.list_cases(
        s, st, who, status=status, clause_id=clause_id, client_id=client_id))
    return render(request, "cases.html", who, cases=cases,
                  filters={"status": status, "clause_id": clause_id, "client_id": client_id})


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, case_id: int, who: Principal = VIEW) -> HTMLResponse:
    def load(s, st):
        case = data.get_case(s, st, who, case_id)
        page = {"case": case, "restricted": data.is_restricted(st, case),
                "timeline": data.case_timeline(s, st, who, case_id),
                "incidents": data.case_incidents(s, st, who, case_id),
                "evidence": data.case_evidence(s, st, who, case_id),
                **data.case_extras(s, st, who, case_id)}
        try:
            page["notice"] = data.notice_preview(s, st, who, case_id)
            page["notice_error"] = ""
        except ACTION_ERRORS as exc:  # e.g. a client without an abuse address
            page["notice"], page["notice_error"] = None, str(exc)
        return page

    page = _in_tx(request, load)
    return render(request, "case.html", who, **page,
                  can_work=who.holds(Perm.WORK), can_report=who.holds(Perm.LEGAL))


def _case_action(request: Request, who: Principal, case_id: int, action: str, done: str,
                 **args: Any) -> Response:
    try:
        _in_tx(request, lambda s, st: data.case_action(s, st, who, case_id, action, **args))
    except (data.Forbidden, data.NotFound):
        raise
    except ACTION_ERRORS as exc:
        return back(request, f"/cases/{case_id}", f"{action} failed: {exc}", "error")
    return back(request, f"/cases/{case_id}", done)


@router.post("/cases/{case_id}/note")
def case_note(request: Request, case_id: int, text: str = Form(..., min_length=1, max_length=20_000),
              who: Principal = WORK) -> Response:
    return _case_action(request, who, case_id, "note", "Note added.", text=text)


@router.post("/cases/{case_id}/status")
def case_status(request: Request, case_id: int, status: str = Form(..., max_length=40),
                note: str = Form("", max_length=20_000), who: Principal = WORK) -> Response:
    return _case_action(request, who, case_id, "status", f"Status set to {status}.",
                        status=status, note=note)


@router.post("/cases/{case_id}/assign")
def case_assign(request: Request, case_id: int, owner: str = Form(..., max_length=100),
                who: Principal = WORK) -> Response:
    return _case_action(request, who, case_id, "assign", f"Assigned to {owner}.", owner=owner)


@router.post("/cases/{case_id}/notify")
def case_notify(request: Request, case_id: int, who: Principal = WORK) -> Response:
    return _case_action(request, who, case_id, "notify", "Notice queued for delivery.")


@router.post("/cases/{case_id}/escalate")
def case_escalate(request: Request, case_id: int, who: Principal = WORK) -> Response:
    return _case_action(request, who, case_id, "escalate", "Case escalated.")


@router.post("/cases/{case_id}/priority")
def case_priority(request: Request, case_id: int, priority: str = Form(..., max_length=20),
                  who: Principal = WORK) -> Response:
    return _case_action(request, who, case_id, "priority", f"Priority set to {priority}.",
                        priority=priority)


@router.post("/cases/{case_id}/merge")
def case_merge(request: Request, case_id: int, source_ids: str = Form(..., max_length=1000),
               who: Principal = WORK) -> Response:
    try:
        ids = [int(x) for x in source_ids.replace(",", " ").replace("#", " ").split()]
    except ValueError:
        return back(request, f"/cases/{case_id}", "merge failed: give case numbers, e.g. 12 14",
                    "error")
    return _case_action(request, who, case_id, "merge",
                        f"Merged {', '.join(f'#{i}' for i in ids)} into this case.", source_ids=ids)


@router.post("/cases/{case_id}/split")
def case_split(request: Request, case_id: int, incident_ids: Annotated[list[int], Form()],
               who: Principal = WORK) -> Response:
    try:
        new = _in_tx(request, lambda s, st: data.case_action(s, st, who, case_id, "split",
                                                            incident_ids=incident_ids))
    except (data.Forbidden, data.NotFound):
        raise
    except ACTION_ERRORS as exc:
        return back(request, f"/cases/{case_id}", f"split failed: {exc}", "error")
    return back(request, f"/cases/{new['id']}", f"Split from case #{case_id} into this new case.")


@router.post("/orders/{order_id}/lift")
def order_lift(request: Request, order_id: int, note: str = Form("", max_length=2000),
               who: Principal = WORK) -> Response:
    try:
        _in_tx(request, lambda s, st: data.lift_order(s, st, who, order_id, note))
    except ACTION_ERRORS as exc:
        return back(request, "/mitigations", f"lift failed: {exc}", "error")
    return back(request, "/mitigations", f"Enforcement order {order_id} lifted.")


@router.post("/cases/{case_id}/report")
def case_report(request: Request, case_id: int, authority: str = Form(..., max_length=200),
                report_id: str = Form(..., max_length=200), at: str = Form(""),
                who: Principal = LEGAL) -> Response:
    try:
        when = parse_time(at) if at.strip() else utcnow()
    except (ValueError, typer.BadParameter):
        return back(request, f"/cases/{case_id}", f"{at!r} is not an ISO-8601 time", "error")
    return _case_action(request, who, case_id, "report", "Mandatory report recorded.",
                        authority=authority, report_id=report_id, at=when)


# --- incidents, clients -----------------------------------------------------------

@router.get("/incidents", response_class=HTMLResponse)
def incidents_page(request: Request, status: str = "", clause_id: str = "", client_id: str = "",
                   who: Principal = VIEW) -> HTMLResponse:
    rows = _in_tx(request, lambda s, st: data.list_incidents(
        s, st, who, status=status, clause_id=clause_id, client_id=client_id, limit=500))
    return render(request, "incidents.html", who, incidents=rows,
                  filters={"status": status, "clause_id": clause_id, "client_id": client_id})


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(request: Request, incident_id: int, who: Principal = VIEW) -> HTMLResponse:
    row = _in_tx(request, lambda s, st: data.get_incident(s, st, who, incident_id))
    return render(request, "incident.html", who, incident=row)


@router.get("/clients", response_class=HTMLResponse)
def clients_page(request: Request, who: Principal = VIEW) -> HTMLResponse:
    rows = _in_tx(request, lambda s, st: data.list_clients(s))
    return render(request, "clients.html", who, clients=rows)


@router.get("/clients/{client_id}", response_class=HTMLResponse)
def client_page(request: Request, client_id: str,
                month: str = Query("", pattern=r"^(\d{4}-\d{2})?$"),
                who: Principal = VIEW) -> HTMLResponse:
    detail = _in_tx(request, lambda s, st: data.client_detail(s, st, who, client_id))
    report, report_error = None, ""
    try:
        state = request.app.state
        report = data.asn_report(state.settings, state.store, client_id=client_id,
                                 month=month or None)
    except StageUnavailable:
        report_error = "unavailable"
    except ACTION_ERRORS as exc:  # e.g. no flow files for the month
        report_error = str(exc)
    return render(request, "client.html", who, **detail, asn_report=report,
                  report_error=report_error, month=month, can_work=who.holds(Perm.WORK))


@router.post("/clients/{client_id}/strikes/{strike_id}/withdraw")
def strike_withdraw(request: Request, client_id: str, strike_id: int,
                    reason: str = Form(..., min_length=1, max_length=2000),
                    who: Principal = WORK) -> Response:
    here = f"/clients/{quote(client_id, safe='')}"
    try:
        _in_tx(request, lambda s, st: data.withdraw_strike(s, st, who, client_id, strike_id,
                                                           reason))
    except ACTION_ERRORS as exc:
        return back(request, here, f"withdraw failed: {exc}", "error")
    return back(request, here, f"Strike {strike_id} withdrawn.")


# --- intake ------------------------------------------------------------------------

@router.get("/intake", response_class=HTMLResponse)
def intake_page(request: Request, who: Principal = VIEW) -> HTMLResponse:
    events = _in_tx(request, lambda s, st: data.review_queue(s, st, who))
    messages = _in_tx(request, lambda s, st: data.intake_messages(s, limit=50))
    return render(request, "intake.html", who, events=events, messages=messages,
                  can_work=who.holds(Perm.WORK))


@router.post("/intake/{event_id}/assign")
def intake_assign(request: Request, event_id: int, client_id: str = Form(..., max_length=100),
                  who: Principal = WORK) -> Response:
    try:
        _in_tx(request, lambda s, st: data.intake_assign(s, who, event_id, client_id))
    except ACTION_ERRORS as exc:
        return back(request, "/intake", f"assign failed: {exc}", "error")
    return back(request, "/intake", f"Event {event_id} assigned to {client_id}.")


@router.post("/intake/{event_id}/dismiss")
def intake_dismiss(request: Request, event_id: int, reason: str = Form("", max_length=2000),
                   who: Principal = WORK) -> Response:
    try:
        _in_tx(request, lambda s, st: data.intake_dismiss(s, who, event_id, reason))
    except ACTION_ERRORS as exc:
        return back(request, "/intake", f"dismiss failed: {exc}", "error")
    return back(request, "/intake", f"Event {event_id} dismissed.")


# --- mitigations, listings, policy, audit -------------------------------------------

@router.get("/mitigations", response_class=HTMLResponse)
def mitigations_page(request: Request, who: Principal = VIEW) -> HTMLResponse:
    def load(s, st):
        page: dict[str, Any] = {}
        try:
            page["bgp"] = data.mitigations(s)
        except StageUnavailable:
            page["bgp"] = None
        try:
            page["orders"] = data.enforcement_orders(s, st, who)
        except StageUnavailable:
            page["orders"] = None
        return page

    return render(request, "mitigations.html", who, **_in_tx(request, load),
                  can_work=who.holds(Perm.WORK))


@router.post("/mitigations/{mitigation_id}/approve")
def mitigation_approve(request: Request, mitigation_id: int, who: Principal = WORK) -> Response:
    try:
        _in_tx(request, lambda s, st: data.mitigation_action(s, who, mitigation_id, "approve"))
    except ACTION_ERRORS as exc:
        return back(request, "/mitigations", f"approve failed: {exc}", "error")
    return back(request, "/mitigations", f"Mitigation {mitigation_id} approved.")


@router.post("/mitigations/{mitigation_id}/withdraw")
def mitigation_withdraw(request: Request, mitigation_id: int,
                        reason: str = Form("", max_length=2000), who: Principal = WORK) -> Response:
    try:
        _in_tx(request, lambda s, st: data.mitigation_action(s, who, mitigation_id, "withdraw",
                                                             reason))
    except ACTION_ERRORS as exc:
        return back(request, "/mitigations", f"withdraw failed: {exc}", "error")
    return back(request, "/mitigations", f"Withdrawal of mitigation {mitigation_id} requested.")


@router.get("/listings", response_class=HTMLResponse)
def listings_page(request: Request, who: Principal = VIEW) -> HTMLResponse:
    rows = _in_tx(request, lambda s, st: data.listings(s))
    return render(request, "table.html", who, title="DNSBL listings of our address space",
                  rows=rows, empty="None of our addresses is listed.")


@router.get("/policy", response_class=HTMLResponse)
def policy_page(request: Request, clause_id: str = Query("", max_length=100), at: str = "",
                who: Principal = VIEW) -> HTMLResponse:
    def load(s, st):
        page: dict[str, Any] = {"versions": None, "clause": None, "error": "",
                                "acceptances": None}
        try:
            page["versions"] = [{k: v for k, v in row.items() if k != "text"}
                                for row in data.policy_versions(s)]
            page["acceptances"] = data.acceptances(s)
        except StageUnavailable as exc:
            page["error"] = str(exc)
        if clause_id:
            try:
                when = parse_time(at) if at else utcnow()
                page["clause"] = data.clause_at(s, clause_id, when)
            except (ValueError, typer.BadParameter, *ACTION_ERRORS) as exc:  # bad time, no clause
                page["error"] = str(exc)
        return page

    page = _in_tx(request, load)
    clause_ids = []
    if available("policy", "CLAUSE_IDS"):
        clause_ids = list(func("policy", "CLAUSE_IDS"))
    return render(request, "policy.html", who, **page, clause_ids=clause_ids,
                  query={"clause_id": clause_id, "at": at})


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, who: Principal = AUDIT) -> HTMLResponse:
    result = _in_tx(request, lambda s, st: data.audit_verify(s))
    return render(request, "audit.html", who, result=result)


# --- the client's self-help link (no account: the token is the credential) ----------

@router.get("/self-help/{token}", response_class=HTMLResponse)
def self_help(request: Request, token: str) -> HTMLResponse:
    view = _client_view(request, token)
    if view is None:
        return render(request, "self_help_invalid.html", None, status_code=404)
    cookie, nonce = request.app.state.signer.login_csrf()
    response = render(request, "self_help.html", None, view=view, token=token, form_csrf=nonce)
    response.set_cookie(LOGIN_CSRF_COOKIE, cookie, path="/", httponly=True, samesite="strict",
                        secure=request.app.state.settings.web.cookie_secure, max_age=3600)
    return response


@router.post("/self-help/{token}")
def self_help_reply(request: Request, token: str, text: str = Form(..., min_length=1,
                                                                       max_length=20_000),
                    csrf: str = Form("")) -> Response:
    here = f"/self-help/{quote(token, safe='')}"
    if not request.app.state.signer.check_login_csrf(request.cookies.get(LOGIN_CSRF_COOKIE), csrf):
        return back(request, here, "The form expired; please send your answer again.", "error")
    if _client_view(request, token) is None:
        return render(request, "self_help_invalid.html", None, status_code=404)
    limit = request.app.state.settings.web.max_note_chars
    if len(text) > limit:
        return back(request, here, f"Your answer is longer than {limit} characters; please "
                    "shorten it.", "error")
    try:
        _in_tx(request, lambda s, st: func("cases", "client_reply")(s, st, token, text))
    except ACTION_ERRORS as exc:
        return back(request, here, f"Your answer could not be recorded: {exc}", "error")
    return back(request, here, "Thank you: your answer was added to the case.")


def _client_view(request: Request, token: str) -> dict | None:
    if len(token) > 500:
        return None
    try:
        view = _in_tx(request, lambda s, st: func("cases", "client_view")(s, st, token))
    except StageUnavailable:
        raise
    except ACTION_ERRORS:
        return None
    if view is None:
        return None
    return plain(view)
