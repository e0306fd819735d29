"""The console over HTTP: login, cookies, CSRF, escaping, case actions, self-help, docs."""

from __future__ import annotations

import re

from tests.web.conftest import bearer, login
from tests.web.scenario import HOSTILE, PASSWORD


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_login_sets_a_hardened_session_cookie(client, world):
    page = client.get("/login")
    response = client.post("/login", data={"username": world.users["analyst"], "password": PASSWORD,
                                           "csrf": _csrf(page.text), "next": "/cases"},
                           follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/cases"
    cookie = next(v for k, v in response.headers.multi_items()
                  if k == "set-cookie" and v.startswith("aupguard_session="))
    flags = cookie.lower()
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "max-age=43200" in flags  # [web] session_hours = 12


def test_login_refuses_wrong_password_missing_csrf_and_open_redirects(client, world):
    page = client.get("/login")
    wrong = client.post("/login", data={"username": world.users["analyst"], "password": "nope",
                                        "csrf": _csrf(page.text)}, follow_redirects=True)
    assert "Wrong user name or password" in wrong.text and "aupguard_session" not in client.cookies
    no_csrf = client.post("/login", data={"username": world.users["analyst"], "password": PASSWORD,
                                          "csrf": "forged"}, follow_redirects=True)
    assert "form expired" in no_csrf.text and "aupguard_session" not in client.cookies
    page = client.get("/login")
    evil = client.post("/login", data={"username": world.users["analyst"], "password": PASSWORD,
                                       "csrf": _csrf(page.text), "next": "//evil.test/x"},
                       follow_redirects=False)
    assert evil.headers["location"] == "/"


def test_login_is_rate_limited_per_user(client, world, web_settings):
    limit = web_settings.web.login_attempts_per_minute
    for _ in range(limit):
        page = client.get("/login")
        client.post("/login", data={"username": "analyst1", "password": "bad",
                                    "csrf": _csrf(page.text)})
    page = client.get("/login")
    blocked = client.post("/login", data={"username": "analyst1", "password": PASSWORD,
                                          "csrf": _csrf(page.text)}, follow_redirects=True)
    assert "Too many failed logins" in blocked.text and "aupguard_session" not in client.cookies


def test_forms_need_the_session_csrf_token(client, world):
    csrf = login(client, world.users["analyst"])
    forged = client.post(f"/cases/{world.case_id}/notify", data={"csrf": "x" * 32},
                         follow_redirects=False)
    assert forged.status_code == 403 and "CSRF" in forged.text
    missing = client.post(f"/cases/{world.case_id}/notify", follow_redirects=False)
    assert missing.status_code == 403
    assert client.get(f"/api/cases/{world.case_id}").json()["status"] == "open"
    ok = client.post(f"/cases/{world.case_id}/notify", data={"csrf": csrf}, follow_redirects=True)
    assert ok.status_code == 200 and "Notice queued for delivery." in ok.text
    assert re.search(r'id="case-status">notified<', ok.text)
    # The API with a session cookie wants the header instead of a form field.
    assert client.post(f"/api/cases/{world.case_id}/escalate").status_code == 403
    escalated = client.post(f"/api/cases/{world.case_id}/escalate", headers={"X-CSRF-Token": csrf})
    assert escalated.status_code == 200 and escalated.json()["status"] == "escalated"


def test_hostile_complaint_text_is_escaped_everywhere(client, world):
    login(client, world.users["analyst"])
    for path in (f"/cases/{world.case_id}", f"/incidents/{world.incident_id}", "/incidents",
                 "/clients/acme", "/clients", "/"):
        html = client.get(path).text
        assert "<script>document" not in html and "<img src=x" not in html, path
        assert "<b>Hosting</b>" not in html, path
    case = client.get(f"/cases/{world.case_id}").text
    assert "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt;" in case
    assert "ACME &lt;b&gt;Hosting&lt;/b&gt;" in case  # the notice preview, as text
    assert HOSTILE not in case


def test_security_headers(client, world):
    login(client, world.users["analyst"])
    response = client.get(f"/cases/{world.case_id}")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_case_page_actions_note_status_assign(client, world):
    csrf = login(client, world.users["analyst"])
    base = f"/cases/{world.case_id}"
    assert "Note added." in client.post(base + "/note", data={"csrf": csrf, "text": "<i>hi</i>"}).text
    assigned = client.post(base + "/assign", data={"csrf": csrf, "owner": "analyst1"}).text
    assert "Assigned to analyst1." in assigned and "owner analyst1" in assigned
    bad = client.post(base + "/status", data={"csrf": csrf, "status": "terminated"}).text
    assert "status failed" in bad and "it can move to" in bad
    resolved = client.post(base + "/status", data={"csrf": csrf, "status": "resolved",
                                                   "note": "fixed"}).text
    assert re.search(r'id="case-status">resolved<', resolved)
    assert "&lt;i&gt;hi&lt;/i&gt;" in resolved
    timeline = client.get(f"/api/cases/{world.case_id}/timeline").json()
    assert [e["kind"] for e in timeline][-3:] == ["note", "assign", "status"]
    assert {e["actor"] for e in timeline[-3:]} == {"web:analyst1"}


def test_legal_records_a_mandatory_report_from_the_console(client, world):
    csrf = login(client, world.users["legal"])
    page = client.post(f"/cases/{world.csam_case_id}/report",
                       data={"csrf": csrf, "authority": "NCMEC", "report_id": "CT-9",
                             "at": "2026-11-21T09:00:00Z"}).text
    assert "Mandatory report recorded." in page and "NCMEC: CT-9" in page
    assert "No mandatory report recorded yet" not in page


def test_self_help_link_shows_the_case_and_takes_a_reply(client, world, web_settings):
    from aupguard.cases.service import client_token

    token = client_token(web_settings, world.case_id)
    page = client.get(f"/self-help/{token}")
    assert page.status_code == 200 and "lawful.exploit" in page.text
    assert "&lt;script&gt;" in page.text and "<script>document" not in page.text
    reply = client.post(f"/self-help/{token}", data={"csrf": _csrf(page.text),
                                                     "text": "We patched the <form>."})
    assert "your answer was added" in reply.text and "We patched the &lt;form&gt;." in reply.text
    timeline = client.get(f"/api/cases/{world.case_id}/timeline",
                          headers={"Authorization": f"Bearer {world.tokens['analyst']}"}).json()
    assert timeline[-1]["kind"] == "client.reply" and timeline[-1]["actor"] == "client:acme"
    assert client.get("/self-help/" + token[:-3] + "AAA").status_code == 404
    forged = client.post(f"/self-help/{token}", data={"csrf": "nope", "text": "spam"})
    assert "form expired" in forged.text


def test_docs_and_openapi_are_local(client, world):
    login(client, world.users["read-only"])
    docs = client.get("/docs").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', docs)
    assert "/static/swagger/swagger-ui-bundle.js" in sources
    assert all(s.startswith("/") for s in sources), sources
    spec = client.get("/openapi.json").json()
    assert "/api/cases/{case_id}/notify" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    init = client.get("/static/docs-init.js").text
    assert "http" not in init


def test_password_change_and_disable_end_sessions(client, world, web_store):
    from aupguard.web import auth

    login(client, world.users["analyst"])
    assert client.get("/cases", follow_redirects=False).status_code == 200
    with web_store.session() as session:
        auth.set_password(session, "analyst1", "another long password")
    assert client.get("/cases", follow_redirects=False).status_code == 303
    login(client, "analyst1", "another long password")
    with web_store.session() as session:
        auth.set_disabled(session, "analyst1", True)
    assert client.get("/cases", follow_redirects=False).status_code == 303
    page = client.get("/login")
    refused = client.post("/login", data={"username": "analyst1", "password": "another long password",
                                          "csrf": _csrf(page.text)})
    assert "Wrong user name or password" in refused.text


def test_pages_say_not_available_when_a_stage_is_missing(client, world, monkeypatch):
    from aupguard.web import stages

    monkeypatch.setitem(stages.STAGES, "cases", ("aupguard.no_such_cases_stage",))
    monkeypatch.setitem(stages.STAGES, "mitigate", ("aupguard.no_such_mitigate",))
    login(client, world.users["analyst"])
    dashboard = client.get("/")
    assert dashboard.status_code == 200 and "Cases: not available in this build." in dashboard.text
    page = client.get("/cases")
    assert page.status_code == 503 and "cases feature is not available" in page.text
    mitigations = client.get("/mitigations")
    assert mitigations.status_code == 200 and "BGP mitigations: not available" in mitigations.text
    client_page = client.get("/clients/acme")
    assert client_page.status_code == 200 and "Strikes: not available" in client_page.text
    api = client.get("/api/cases", headers={"Authorization": f"Bearer {world.tokens['analyst']}"})
    assert api.status_code == 503 and "not available" in api.json()["detail"]


def test_dashboard_charts_count_incidents_and_cases(client, world, web_store, web_settings):
    from datetime import timedelta

    from aupguard.web import data
    from aupguard.web.auth import Principal
    from tests.web.scenario import T0

    legal = Principal("legal1", "legal", "session")
    analyst = Principal("analyst1", "analyst", "session")
    with web_store.session() as session:
        board = data.dashboard(session, web_settings, legal, now=T0 + timedelta(days=1))
        hidden = data.dashboard(session, web_settings, analyst, now=T0 + timedelta(days=1))
    assert board["incidents_per_day"][-2:] == [("2026-11-20", 2), ("2026-11-21", 0)]
    assert sum(n for _, n in board["incidents_per_day"]) == 2
    assert board["top_clients"] == [("acme", 2)] and board["open_cases"] == 2
    assert sorted(board["open_by_clause"]) == [("content.csam", 1), ("lawful.exploit", 1)]
    assert hidden["top_clients"] == [("acme", 1)] and hidden["open_by_clause"] == [("lawful.exploit", 1)]
    login(client, world.users["legal"])
    html = client.get("/").text
    assert "<title>lawful.exploit: 1</title>" in html and "<title>content.csam: 1</title>" in html
    assert html.count('class="bar"') >= 14 + 2 + 1


def test_merge_split_priority_and_export(client, world, web_store, web_settings):
    import io
    import tarfile
    from datetime import timedelta

    from aupguard import incidents
    from aupguard.cases import service as cases
    from tests.web.scenario import T0

    # A second lawful.exploit case for acme, outside the grouping window of the first.
    with web_store.session() as session:
        incidents.report(session, incidents.Finding(
            source="complaint", rule="xarf", clause_id="lawful.exploit", key="xarf:2",
            first_seen=T0 + timedelta(days=10), last_seen=T0 + timedelta(days=10),
            client_id="acme", offender="192.0.2.12", summary="second"))
        second = cases.ingest_incidents(session, web_settings)[0].id
    assert second != world.case_id
    csrf = login(client, world.users["analyst"])
    merged = client.post(f"/cases/{world.case_id}/merge", data={"csrf": csrf,
                                                               "source_ids": f"#{second}"}).text
    assert f"Merged #{second} into this case." in merged and 'name="incident_ids"' in merged
    assert world.csam_case_id != second
    hidden = client.post(f"/cases/{world.case_id}/merge",
                         data={"csrf": csrf, "source_ids": str(world.csam_case_id)})
    assert hidden.status_code == 403  # an analyst cannot merge a restricted case it cannot see
    case = client.get(f"/api/cases/{world.case_id}").json()
    moved = case["incident_ids"][-1]
    split = client.post(f"/cases/{world.case_id}/split", data={"csrf": csrf,
                                                              "incident_ids": [str(moved)]})
    assert "Split from case" in split.text
    new_id = int(str(split.url).rsplit("/", 1)[-1])
    assert client.get(f"/api/cases/{new_id}").json()["incident_ids"] == [moved]
    prio = client.post(f"/cases/{new_id}/priority", data={"csrf": csrf, "priority": "high"}).text
    assert "Priority set to high." in prio
    # The law-enforcement bundle: legal only, a real signed tar.gz.
    assert client.get(f"/api/cases/{world.case_id}/export").status_code == 403
    bundle = client.get(f"/api/cases/{world.case_id}/export",
                        headers={"Authorization": f"Bearer {world.tokens['legal']}"})
    assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(bundle.content), mode="r:gz") as tar:
        assert {"case.json", "timeline.json", "incidents.json"} <= set(tar.getnames())


def test_read_only_sees_no_action_forms(client, world):
    login(client, world.users["read-only"])
    page = client.get(f"/cases/{world.case_id}").text
    assert "Next mail to the client" in page and 'id="timeline"' in page
    for marker in ('id="send-notice"', 'id="escalate"', 'id="add-note"', "/merge", "/report"):
        assert marker not in page, marker
    assert 'action="/intake/' not in client.get("/intake").text


def test_policy_page_versions_clause_and_acceptance(client, world, web_store):
    from aupguard.policy import record_activity
    from tests.web.scenario import T0

    with web_store.session() as session:
        record_activity(session, "acme", "traffic", T0)
    login(client, world.users["legal"])
    page = client.get("/policy?clause_id=mail.spam&at=2026-06-01T00:00:00Z").text
    assert "2014" in page and "Sending unsolicited mail messages is prohibited" in page
    assert "acme" in page and "traffic" in page
    bad = client.get("/policy?clause_id=mail.spam&at=yesterday").text
    assert "not an ISO-8601 time" in bad
    rows = client.get("/api/policy/acceptances", headers={
        "Authorization": f"Bearer {world.tokens['read-only']}"}).json()
    assert [(r["client_id"], r["version"], r["activity"]) for r in rows] == [("acme", "2014", "traffic")]


def test_copyright_strikes_are_counted_and_withdrawn(client, world, web_store, web_settings):
    from datetime import timedelta

    from aupguard import incidents
    from aupguard.cases import service as cases
    from tests.web.scenario import T0

    with web_store.session() as session:
        for n in range(3):  # three ACNS notices about acme: the warning threshold
            incidents.report(session, incidents.Finding(
                source="complaint", rule="acns", clause_id="lawful.ip", key=f"acns:{n}",
                first_seen=T0 + timedelta(hours=n), last_seen=T0 + timedelta(hours=n),
                client_id="acme", offender="192.0.2.30", summary=f"notice {n}"))
        cases.ingest_incidents(session, web_settings)
    h = bearer(world, "analyst")
    ledger = client.get("/api/clients/acme", headers=h).json()["strikes"]
    assert ledger["active"] == 3 and ledger["level"] == "warning"
    csrf = login(client, world.users["analyst"])
    page = client.get("/clients/acme").text
    assert 'id="strikes-active">3<' in page and "final warning" in page
    first = ledger["entries"][0]["id"]
    done = client.post(f"/clients/acme/strikes/{first}/withdraw",
                       data={"csrf": csrf, "reason": "counter-notice upheld"}).text
    assert f"Strike {first} withdrawn." in done and 'id="strikes-active">2<' in done
    assert client.post(f"/api/clients/resel/strikes/{first}/withdraw", headers=h,
                       json={"reason": "x"}).status_code == 404
