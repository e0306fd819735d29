"""The intake review queue in the console: hostile complaints shown as text, assigned by hand."""

from __future__ import annotations

from pathlib import Path

from tests.web.conftest import bearer, login


def _hostile_unattributed(settings, store) -> int:
    from aupguard.intake import samples
    from aupguard.intake.pipeline import Intake

    raw = (Path(samples.__file__).parent / "hostile.eml").read_bytes()
    result = Intake(settings, store).ingest(raw, source="test")
    assert len(result.event_ids) == 1
    return result.event_ids[0]


def test_review_queue_shows_complaints_escaped_and_assigns_them(client, world, web_settings,
                                                                 web_store):
    event_id = _hostile_unattributed(web_settings, web_store)  # 198.51.100.66 is nobody's
    queue = client.get("/api/intake/queue", headers=bearer(world, "read-only")).json()
    assert [e["id"] for e in queue] == [event_id] and queue[0]["ip"] == "198.51.100.66"

    csrf = login(client, world.users["analyst"])
    page = client.get("/intake").text
    assert f"Event #{event_id}" in page
    # The received mail itself, listed with its hostile subject as text.
    assert "&lt;script&gt;alert(&#34;subject&#34;)&lt;/script&gt; scan from" in page
    messages = client.get("/api/intake/messages", headers=bearer(world, "read-only")).json()
    assert [(m["parser"], m["event_count"]) for m in messages] == [("freetext", 1)]
    assert messages[0]["reporter"] == "attacker@evil.example"
    assert "&lt;script&gt;document.location=" in page and "<script>document" not in page

    wrong = client.post(f"/intake/{event_id}/assign", data={"csrf": csrf, "client_id": "nobody"})
    assert "assign failed: no client" in wrong.text
    done = client.post(f"/intake/{event_id}/assign", data={"csrf": csrf, "client_id": "acme"})
    assert f"Event {event_id} assigned to acme." in done.text and f"Event #{event_id}" not in done.text
    incidents = client.get("/api/incidents?client_id=acme&clause_id=security.scan",
                           headers=bearer(world, "analyst")).json()
    assert len(incidents) == 1 and incidents[0]["offender"].startswith("198.51.100.66")


def test_dismiss_from_the_queue_is_audited(client, world, web_settings, web_store):
    from sqlalchemy import select

    from aupguard.store.audit import AuditEntry

    event_id = _hostile_unattributed(web_settings, web_store)
    assert client.post(f"/api/intake/events/{event_id}/dismiss", headers=bearer(world, "read-only"),
                       json={"reason": "spam"}).status_code == 403
    done = client.post(f"/api/intake/events/{event_id}/dismiss", headers=bearer(world, "analyst"),
                       json={"reason": "not ours"})
    assert done.status_code == 200 and done.json()["status"] == "dismissed"
    assert client.get("/api/intake/queue", headers=bearer(world, "analyst")).json() == []
    with web_store.session() as session:
        entry = session.execute(select(AuditEntry).where(AuditEntry.action == "intake.dismiss")
                                ).scalar_one()
        assert (entry.actor, entry.note) == ("token:tok-analyst", "not ours")
