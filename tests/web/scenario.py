"""Test data for the web tests: users of every role, clients, and cases built
the way production builds them (a complaint finding -> incident -> cases.ingest_incidents)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aupguard.web import auth

PASSWORD = "correct horse battery staple"
ROLES = ("read-only", "analyst", "legal", "admin")
# A complaint body carrying markup: it must reach the browser as text, never as HTML.
HOSTILE = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@dataclass
class World:
    users: dict[str, str] = field(default_factory=dict)     # role -> user name
    tokens: dict[str, str] = field(default_factory=dict)    # role -> bearer token
    case_id: int = 0            # a lawful.exploit case from a complaint with <script> in it
    csam_case_id: int = 0       # a restricted content.csam case
    incident_id: int = 0
    csam_incident_id: int = 0


def add_users(store) -> World:
    world = World()
    with store.session() as session:
        for role in ROLES:
            name = role.replace("-", "") + "1"
            auth.add_user(session, name, role, PASSWORD)
            world.users[role] = name
            world.tokens[role] = auth.create_token(session, f"tok-{role}", role)
    return world


def add_cases(store, settings, world: World) -> World:
    """Two clients (one a reseller of the other) and two cases: a complaint and a CSAM report."""
    from aupguard import incidents
    from aupguard.cases import service as cases
    from aupguard.registry import Client, add_assignment, add_client

    with store.session() as session:
        add_client(session, Client(id="resel", name="Reseller Ltd", abuse_email="abuse@resel.test"))
        add_client(session, Client(id="acme", name="ACME <b>Hosting</b>", parent_id="resel",
                                   abuse_email="abuse@acme.test",
                                   escalation_email="legal@acme.test"))
        add_assignment(session, "acme", "192.0.2.0/24", valid_from=T0 - timedelta(days=30))
        inc = incidents.report(session, incidents.Finding(
            source="complaint", rule="xarf", clause_id="lawful.exploit",
            key="xarf:192.0.2.10:web-attack", first_seen=T0, last_seen=T0 + timedelta(minutes=5),
            client_id="acme", offender="192.0.2.10", victim="198.51.100.20",
            summary=f"Web form attack from 192.0.2.10: {HOSTILE}",
            evidence=[{"kind": "complaint-excerpt", "excerpt": f"POST /login {HOSTILE}",
                       "sha256": "ab" * 32}]))
        csam = incidents.report(session, incidents.Finding(
            source="complaint", rule="free-text", clause_id="content.csam",
            key="csam:192.0.2.11", first_seen=T0, last_seen=T0, client_id="acme",
            offender="192.0.2.11", summary="CONTENT-SECRET-URL http://192.0.2.11/x",
            evidence=[{"kind": "complaint", "url": "http://192.0.2.11/x",
                       "sha256": "cd" * 32, "size": 1234}]))
        world.incident_id, world.csam_incident_id = inc.id, csam.id
        opened = cases.ingest_incidents(session, settings, now=T0 + timedelta(hours=1))
        for case in opened:
            if case.clause_id == "content.csam":
                world.csam_case_id = case.id
            else:
                world.case_id = case.id
    assert world.case_id and world.csam_case_id
    return world
