"""Deadlines and the escalation ladder; enforcement orders; reseller-chain notices."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aupguard.cases import service as cases
from aupguard.errors import InputError
from aupguard.store.outbox import OutboxMessage
from aupguard.store.types import utcnow

from .conftest import T0, add_incident


def _one_case(store, settings, **kw) -> int:
    add_incident(store, **kw)
    with store.session() as s:
        (case,) = cases.ingest_incidents(s, settings)
    return case.id


def test_notice_goes_up_the_reseller_chain(registry, settings):
    case_id = _one_case(registry, settings, clause="mail.spam", client="c1")
    with registry.session() as s:
        message = cases.send_notice(s, settings, case_id, "alice")
        assert message.to_addrs == ["noc@client1.example"]
        assert message.headers["Cc"] == "abuse@reseller.example, abuse@wholesale.example"
        assert message.kind == "notice" and message.ref == f"case:{case_id}"
        case = cases.get_case(s, case_id)
        assert case.status == "notified" and case.current_step == "notice"
        assert case.due_at > utcnow() + timedelta(hours=71)
    # Escalation contacts join from the suspension step on.
    with registry.session() as s:
        for _ in range(3):  # warning, restriction, suspension
            step = cases.escalate(s, settings, case_id, "alice")
        assert step.name == "suspension"
        last = s.get(OutboxMessage, step.message_id)
        assert last.headers["Cc"].split(", ") == ["abuse@reseller.example", "abuse@wholesale.example",
                                                  "ceo@client1.example", "legal@wholesale.example"]


def test_client_without_abuse_contact_uses_its_mail(lite_registry, settings):
    registry = lite_registry
    case_id = _one_case(registry, settings, client="c2")
    with registry.session() as s:
        preview = cases.preview_notice(s, settings, case_id)
        assert (preview.to, preview.cc) == (["ops@client2.example"], [])


def test_full_ladder_by_hand(registry, settings):
    case_id = _one_case(registry, settings, clause="mail.spam", client="c1")
    expected = [("notice", "notified", None), ("warning", "escalated", None),
                ("restriction", "restricted", "port25-block"),
                ("suspension", "suspended", "suspend-service"),
                ("termination", "terminated", "terminate-contract")]
    with registry.session() as s:
        for name, status, action in expected:
            step = cases.escalate(s, settings, case_id, "alice")
            assert (step.name, step.status) == (name, status)
            if action:
                (order,) = [o for o in cases.orders(s, case_id=case_id) if o.id == step.order_id]
                assert (order.kind, order.action, order.client_id) == (name, action, "c1")
            else:
                assert step.order_id is None
        assert step.due_at is None and step.next_step is None
        with pytest.raises(InputError):
            cases.escalate(s, settings, case_id, "alice")
        assert len(cases.orders(s, case_id=case_id, active_only=True)) == 3
        restriction = cases.orders(s, case_id=case_id)[0]
        assert restriction.params == {"port": 25, "protocol": "tcp", "direction": "outbound"}
        lifted = cases.lift_order(s, restriction.id, "alice")
        assert lifted.status == "lifted"
        notices = s.query(OutboxMessage).filter_by(ref=f"case:{case_id}").count()
        assert notices == 5
        escalations = [t for t in cases.timeline(s, case_id) if t.kind == "escalate"]
        assert [t.text for t in escalations][-1] == "step 5/5: termination"


def test_deadlines_escalate_automatically(registry, settings):
    case_id = _one_case(registry, settings, clause="security.flood", client="c1")
    now = utcnow()
    with registry.session() as s:
        # Untriaged: by default a person sends the first notice, even past the triage deadline.
        assert cases.run_deadlines(s, settings, now + timedelta(days=2)) == []
        cases.send_notice(s, settings, case_id, "alice")
    with registry.session() as s:
        assert cases.run_deadlines(s, settings, now + timedelta(hours=71)) == []
        (step,) = cases.run_deadlines(s, settings, now + timedelta(hours=73))
        assert (step.case_id, step.name, step.actor) == (case_id, "warning", "system:deadline")
        assert step.due_at == now + timedelta(hours=73 + 48)
        # Nothing more is due until the warning's own deadline passes.
        assert cases.run_deadlines(s, settings, now + timedelta(hours=100)) == []
        (step,) = cases.run_deadlines(s, settings, now + timedelta(hours=122))
        assert (step.name, step.status) == ("restriction", "restricted")
        (order,) = cases.orders(s, case_id=case_id)
        assert (order.action, order.params) == ("rate-limit", {"rate_bps": settings.cases.rate_limit_bps})


def test_deadlines_respect_settings_and_client_answers(registry, settings):
    settings.cases.auto_first_notice = True
    settings.cases.ladders["security.flood"] = ["notice", "suspension"]
    case_id = _one_case(registry, settings, clause="security.flood", client="c1")
    now = utcnow()
    with registry.session() as s:
        (step,) = cases.run_deadlines(s, settings, now + timedelta(hours=25))
        assert step.name == "notice" and step.next_step == "suspension"
        token = cases.client_token(settings, case_id)
        cases.client_reply(s, settings, token, "we are looking into it")
        assert cases.get_case(s, case_id).status == "awaiting_client"
        # The client answered: automation waits for the analyst.
        assert cases.run_deadlines(s, settings, now + timedelta(days=30)) == []
        cases.set_status(s, case_id, "notified", "alice")
        (step,) = cases.run_deadlines(s, settings, now + timedelta(days=30))
        assert (step.name, step.status, step.next_step) == ("suspension", "suspended", None)
        assert cases.run_deadlines(s, settings, now + timedelta(days=90)) == []
    settings.cases.auto_escalate = False
    case2 = _one_case(registry, settings, clause="mail.spam", client="c2")
    with registry.session() as s:
        cases.send_notice(s, settings, case2, "alice")
        assert cases.run_deadlines(s, settings, now + timedelta(days=30)) == []


def test_periodic_round_groups_escalates_and_reports(lite_registry, settings):
    registry = lite_registry
    settings.cases.auto_first_notice = True
    add_incident(registry, clause="mail.relay", client="c1")
    add_incident(registry, clause="mail.relay", client="c1", at=T0 + timedelta(hours=2))
    now = utcnow()
    with registry.session() as s:
        first = cases.periodic(s, settings, now)
        assert len(first.cases) == 1 and first.steps == [] and not first.delivery_enabled
        second = cases.periodic(s, settings, now + timedelta(hours=25))
        assert second.cases == [] and [x.name for x in second.steps] == ["notice"]
        assert cases.get_case(s, first.cases[0]).incident_ids.__len__() == 2


@pytest.mark.postgres
def test_concurrent_deadline_runners_take_each_step_once(pg_server, settings):
    # Row locks (FOR UPDATE SKIP LOCKED) are PostgreSQL's; SQLite has a single writer anyway.
    import os

    from aupguard.store.db import Store

    from .conftest import populate

    registry = Store(pg_server.create_database(f"cases_lock_{os.getpid()}"))
    registry.migrate()
    populate(registry)
    case_id = _one_case(registry, settings, clause="mail.spam", client="c1")
    with registry.session() as s:
        cases.send_notice(s, settings, case_id, "alice")
    later = utcnow() + timedelta(days=4)
    with registry.session() as first:
        taken = cases.run_deadlines(first, settings, later)
        with registry.session() as second:  # runs while the first still holds its locks
            assert cases.run_deadlines(second, settings, later) == []
    assert [x.name for x in taken] == ["warning"]
    with registry.session() as s:
        assert len([t for t in cases.timeline(s, case_id) if t.kind == "escalate"]) == 1
    registry.dispose()


def test_a_case_that_cannot_escalate_does_not_block_the_others(lite_registry, settings):
    from aupguard.registry import Client, add_client

    registry = lite_registry
    with registry.session() as s:
        add_client(s, Client(id="mute", name="No Contact Ltd"))
    settings.cases.auto_first_notice = True
    add_incident(registry, client="mute", clause="security.scan")
    add_incident(registry, client="c2", clause="security.scan")
    now = utcnow()
    with registry.session() as s:
        by_client = {c.client_id: c.id for c in cases.ingest_incidents(s, settings)}
        steps = cases.run_deadlines(s, settings, now + timedelta(hours=25))
        assert [x.case_id for x in steps] == [by_client["c2"]]
        mute = cases.get_case(s, by_client["mute"])
        assert mute.ladder_step == -1 and mute.status == "open"
        assert mute.due_at == now + timedelta(hours=25 + 24)
        (failure,) = [t for t in cases.timeline(s, mute.id) if t.kind == "escalate.failed"]
        assert "no abuse contact" in failure.text
        assert cases.orders(s, case_id=mute.id) == []
        assert s.query(OutboxMessage).filter_by(ref=f"case:{mute.id}").count() == 0
