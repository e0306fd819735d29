"""The NOC's views: BGP mitigations (approve / withdraw), enforcement orders, live flow rate."""

from __future__ import annotations

import time
from datetime import timedelta

from tests.web.conftest import bearer, login
from tests.web.scenario import T0


def _pending_mitigation(store) -> int:
    from aupguard.detect.models import Mitigation

    with store.session() as session:
        row = Mitigation(incident_id=None, rule="syn_flood", client_id="acme", prefix="192.0.2.10/32",
                         kind="blackhole", route="announce route 192.0.2.10/32 next-hop 192.0.2.1 "
                         "community [65535:666]", status="pending", reason="", detail={},
                         created_at=T0, last_attack_at=T0)
        session.add(row)
        session.flush()
        return row.id


def test_mitigations_are_approved_and_withdrawn_from_the_console(client, world, web_store):
    mid = _pending_mitigation(web_store)
    read_only = client.post(f"/api/mitigations/{mid}/approve", headers=bearer(world, "read-only"))
    assert read_only.status_code == 403
    csrf = login(client, world.users["analyst"])
    page = client.get("/mitigations").text
    assert "192.0.2.10/32" in page and f'action="/mitigations/{mid}/approve"' in page
    approved = client.post(f"/mitigations/{mid}/approve", data={"csrf": csrf}).text
    assert f"Mitigation {mid} approved." in approved
    again = client.post(f"/mitigations/{mid}/approve", data={"csrf": csrf}).text
    assert "approve failed" in again and "only pending ones" in again
    withdrawn = client.post(f"/mitigations/{mid}/withdraw", data={"csrf": csrf, "reason": "over"})
    assert f"Withdrawal of mitigation {mid} requested." in withdrawn.text
    rows = client.get("/api/mitigations", headers=bearer(world, "read-only")).json()
    assert [(r["id"], r["status"], r["reason"]) for r in rows] == [(mid, "withdrawn", "over")]


def test_enforcement_orders_follow_escalation_and_hide_restricted_ones(client, world):
    analyst, legal = bearer(world, "analyst"), bearer(world, "legal")
    for _ in range(3):  # notice, warning, restriction
        assert client.post(f"/api/cases/{world.case_id}/escalate", headers=analyst).status_code == 200
    client.post(f"/api/cases/{world.csam_case_id}/escalate", headers=legal)  # notice
    client.post(f"/api/cases/{world.csam_case_id}/escalate", headers=legal)  # suspension
    mine = client.get("/api/orders", headers=analyst).json()
    assert [(o["case_id"], o["kind"], o["action"]) for o in mine] == [
        (world.case_id, "restriction", "rate-limit")]
    everything = client.get("/api/orders", headers=legal).json()
    assert {(o["case_id"], o["kind"]) for o in everything} == {
        (world.case_id, "restriction"), (world.csam_case_id, "suspension")}
    login(client, world.users["analyst"])
    page = client.get("/mitigations").text
    assert "rate-limit" in page and "suspend-service" not in page


def test_live_flow_rate_from_the_collector_stats_file(client, world, web_settings):
    from aupguard.flows.collector import stats_path
    from aupguard.flows.metrics import write_stats_file

    h = bearer(world, "read-only")
    assert client.get("/api/flows/rate", headers=h).status_code == 503
    now = time.time()
    path = stats_path(web_settings)
    write_stats_file(path, {"time": now - 10, "started_at": now - 110, "flows_out": 50_000,
                            "running": True})
    first = client.get("/api/flows/rate", headers=h).json()
    assert first["flows_per_s"] == 500.0 and first["basis"].startswith("average")
    write_stats_file(path, {"time": now, "started_at": now - 110, "flows_out": 80_000,
                            "running": True})
    second = client.get("/api/flows/rate", headers=h).json()
    assert second["flows_per_s"] == 3000.0 and second["basis"] == "over the last 10 s"
    assert second["running"] is True and second["flows_total"] == 80_000
    login(client, world.users["analyst"])
    assert 'id="flow-rate">3,000.0 flows/s' in client.get("/").text
    assert timedelta(seconds=second["age_s"]) < timedelta(minutes=1)


def test_orders_are_lifted_from_the_console(client, world):
    analyst = bearer(world, "analyst")
    for _ in range(3):
        client.post(f"/api/cases/{world.case_id}/escalate", headers=analyst)
    order = client.get("/api/orders", headers=analyst).json()[0]
    csrf = login(client, world.users["analyst"])
    page = client.post(f"/orders/{order['id']}/lift", data={"csrf": csrf, "note": "fixed"}).text
    assert f"Enforcement order {order['id']} lifted." in page
    assert client.get("/api/orders", headers=analyst).json()[0]["status"] == "lifted"
