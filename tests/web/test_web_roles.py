"""The role matrix: read-only reads, analysts work, only legal sees restricted (CSAM) cases,
and nobody ever sees restricted evidence content, legal included."""

from __future__ import annotations

from tests.web.conftest import bearer, login
from tests.web.scenario import add_cases, add_users

SECRET = "CONTENT-SECRET-URL"


def test_read_only_reads_but_cannot_change(client, world):
    h = bearer(world, "read-only")
    case = client.get(f"/api/cases/{world.case_id}", headers=h).json()
    assert case["status"] == "open" and case["client_id"] == "acme"
    for path, body in ((f"/api/cases/{world.case_id}/notify", None),
                       (f"/api/cases/{world.case_id}/escalate", None),
                       (f"/api/cases/{world.case_id}/status", {"status": "resolved"}),
                       (f"/api/cases/{world.case_id}/notes", {"text": "hi"})):
        response = client.post(path, headers=h, json=body)
        assert response.status_code == 403, path
        assert "read-only" in response.json()["detail"]
    after = client.get(f"/api/cases/{world.case_id}", headers=h).json()
    assert after["status"] == "open" and after["updated_at"] == case["updated_at"]
    assert client.get(f"/api/cases/{world.case_id}/timeline", headers=h).json()[-1]["kind"] != "note"


def test_analyst_works_a_case(client, world):
    h = bearer(world, "analyst")
    notified = client.post(f"/api/cases/{world.case_id}/notify", headers=h)
    assert notified.status_code == 200 and notified.json()["status"] == "notified"
    escalated = client.post(f"/api/cases/{world.case_id}/escalate", headers=h)
    assert escalated.status_code == 200 and escalated.json()["status"] == "escalated"
    note = client.post(f"/api/cases/{world.case_id}/notes", headers=h, json={"text": "called them"})
    assert note.status_code == 200
    timeline = client.get(f"/api/cases/{world.case_id}/timeline", headers=h).json()
    kinds = [e["kind"] for e in timeline]
    assert "notice" in kinds and "escalate" in kinds and kinds[-1] == "note"
    assert timeline[-1]["actor"] == "token:tok-analyst" and timeline[-1]["text"] == "called them"
    bad = client.post(f"/api/cases/{world.case_id}/status", headers=h, json={"status": "nonsense"})
    assert bad.status_code == 400 and "unknown status" in bad.json()["detail"]


def test_analyst_cannot_see_csam(client, world):
    h = bearer(world, "analyst")
    ids = [c["id"] for c in client.get("/api/cases", headers=h).json()]
    assert world.case_id in ids and world.csam_case_id not in ids
    assert client.get("/api/cases?clause_id=content.csam", headers=h).json() == []
    for path in (f"/api/cases/{world.csam_case_id}", f"/api/cases/{world.csam_case_id}/timeline",
                 f"/api/cases/{world.csam_case_id}/evidence",
                 f"/api/cases/{world.csam_case_id}/incidents",
                 f"/api/incidents/{world.csam_incident_id}"):
        response = client.get(path, headers=h)
        assert response.status_code == 403, path
        assert SECRET not in response.text
    incidents = client.get("/api/incidents", headers=h).json()
    assert [i["id"] for i in incidents] == [world.incident_id]
    assert client.post(f"/api/cases/{world.csam_case_id}/notify", headers=h).status_code == 403
    detail = client.get("/api/clients/acme", headers=h).json()
    assert [c["id"] for c in detail["cases"]] == [world.case_id]
    # The console too: no link in the list, 403 on the page.
    login(client, world.users["analyst"])
    assert f"/cases/{world.csam_case_id}\"" not in client.get("/cases").text
    page = client.get(f"/cases/{world.csam_case_id}")
    assert page.status_code == 403 and "legal" in page.text and SECRET not in page.text


def test_legal_sees_csam_as_hashes_only(client, world):
    h = bearer(world, "legal")
    ids = [c["id"] for c in client.get("/api/cases", headers=h).json()]
    assert world.csam_case_id in ids and world.case_id in ids
    case = client.get(f"/api/cases/{world.csam_case_id}", headers=h).json()
    assert case["restricted"] is True and case["clause_id"] == "content.csam"
    incidents = client.get(f"/api/cases/{world.csam_case_id}/incidents", headers=h).json()
    assert incidents[0]["evidence"] == [{"sha256": "cd" * 32, "size": 1234, "kind": "complaint"}]
    evidence = client.get(f"/api/cases/{world.csam_case_id}/evidence", headers=h).json()
    assert {e["sha256"] for e in evidence} >= {"cd" * 32} and all(e["held"] for e in evidence)
    for path in (f"/api/cases/{world.csam_case_id}/incidents",
                 f"/api/incidents/{world.csam_incident_id}", "/api/incidents",
                 f"/api/cases/{world.csam_case_id}/timeline"):
        assert SECRET not in client.get(path, headers=h).text, path
    login(client, world.users["legal"])
    page = client.get(f"/cases/{world.csam_case_id}")
    assert page.status_code == 200 and "cd" * 32 in page.text and SECRET not in page.text
    assert "No mandatory report recorded yet" in page.text


def test_csam_case_closes_only_after_the_legal_report(client, world):
    legal, analyst = bearer(world, "legal"), bearer(world, "analyst")
    refused = client.post(f"/api/cases/{world.csam_case_id}/status", headers=legal,
                          json={"status": "closed"})
    assert refused.status_code == 400 and "mandatory report" in refused.json()["detail"]
    report = {"authority": "NCMEC", "report_id": "CT-123", "at": "2026-11-21T09:00:00Z"}
    assert client.post(f"/api/cases/{world.csam_case_id}/report", headers=analyst,
                       json=report).status_code == 403
    assert client.post(f"/api/cases/{world.csam_case_id}/report", headers=legal,
                       json=report).status_code == 200
    closed = client.post(f"/api/cases/{world.csam_case_id}/status", headers=legal,
                         json={"status": "closed"})
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    evidence = client.get(f"/api/cases/{world.csam_case_id}/evidence", headers=legal).json()
    assert all(e["held"] and e["held_until"].startswith("2027-11-21") for e in evidence)


def test_admin_manages_users_and_verifies_audit(client, world):
    users = client.get("/api/users", headers=bearer(world, "admin")).json()
    assert {u["name"]: u["role"] for u in users} == {
        "admin1": "admin", "analyst1": "analyst", "legal1": "legal", "readonly1": "read-only"}
    assert "password_hash" not in users[0]
    verify = client.get("/api/audit/verify", headers=bearer(world, "admin")).json()
    assert verify["ok"] is True and verify["checked"] > 10


def test_audit_verify_reports_a_modified_row(client, world, web_store):
    from sqlalchemy import update

    from aupguard.store.audit import AuditEntry

    with web_store.session() as session:
        session.execute(update(AuditEntry).where(AuditEntry.id == 3).values(actor="mallory"))
    verify = client.get("/api/audit/verify", headers=bearer(world, "legal")).json()
    assert verify == {"ok": False, "checked": 3, "broken_at": 3,
                      "reason": "content does not match its hash (row modified)"}
    login(client, world.users["legal"])
    assert "broken at entry 3" in client.get("/audit").text


def test_me_reports_role_and_permissions(client, world):
    me = client.get("/api/me", headers=bearer(world, "legal")).json()
    assert me == {"name": "tok-legal", "role": "legal", "via": "token",
                  "permissions": ["audit", "legal", "metrics", "view", "work"]}


def test_role_matrix_on_postgres_and_sqlite(store, settings):
    """The same matrix on both databases (the `store` fixture runs SQLite and PostgreSQL)."""
    from fastapi.testclient import TestClient

    from aupguard.web.app import create_app

    world = add_cases(store, settings, add_users(store))
    with TestClient(create_app(settings, store)) as client:
        analyst, legal = bearer(world, "analyst"), bearer(world, "legal")
        assert [c["id"] for c in client.get("/api/cases", headers=analyst).json()] == [world.case_id]
        assert client.get(f"/api/cases/{world.csam_case_id}", headers=analyst).status_code == 403
        assert client.get(f"/api/cases/{world.csam_case_id}", headers=legal).status_code == 200
        sent = client.post(f"/api/cases/{world.case_id}/notify", headers=analyst)
        assert sent.status_code == 200 and sent.json()["status"] == "notified"
        assert client.post(f"/api/cases/{world.case_id}/notify",
                           headers=bearer(world, "read-only")).status_code == 403
        assert client.get("/api/audit/verify", headers=legal).json()["ok"] is True


def test_overlong_notes_are_refused_with_the_limit(client, world, web_settings):
    web_settings.web.max_note_chars = 100  # the app holds this very settings object
    h = bearer(world, "analyst")
    response = client.post(f"/api/cases/{world.case_id}/notes", headers=h, json={"text": "x" * 101})
    assert response.status_code == 400 and "max_note_chars" in response.json()["detail"]
    assert client.post(f"/api/cases/{world.case_id}/notes", headers=h,
                       json={"text": "x" * 100}).status_code == 200
