"""Storing, attributing (time-bounded and CGNAT port ranges), review queue, replies, dedupe."""

from __future__ import annotations

from sqlalchemy import select

from aupguard.incidents import list_incidents
from aupguard.intake.api import (assign_event, dismiss_event, list_events, list_messages,
                                 review_queue)
from aupguard.intake.models import EventRow
from aupguard.intake.pipeline import Intake
from aupguard.store import audit
from aupguard.store.outbox import queued
from tests.intake.conftest import sample, seed_registry


def _events(store, message_id):
    with store.session() as session:
        return list_events(session, message_id=message_id)


def test_attribution_time_bounded_and_cgnat_ports(intake_settings, store):
    """On SQLite and PostgreSQL: the holder at the event time, the CGNAT user by port."""
    with store.session() as session:
        seed_registry(session)
    intake = Intake(intake_settings, store, index_ttl=0)
    expected = {
        "arf-fbl.eml": ("acme", "attributed"),          # 08:59 before the 12:00 handover
        "freetext.eml": ("bravo", "attributed"),        # 13:05 after it
        "xarf-v4.eml": ("cgnat-b", "attributed"),       # 203.0.113.9 port 40000
        "spamcop.eml": (None, "review"),                # CGNAT address, no port: ambiguous
    }
    for name, (client, status) in expected.items():
        result = intake.ingest(sample(name))
        (event,) = _events(store, result.message_id)
        assert (event.client_id, event.status) == (client, status), name
    with store.session() as session:
        (spam,) = [e for e in review_queue(session) if e.parser == "spamcop"]
        assert sorted(spam.candidates) == ["cgnat-a", "cgnat-b"]
        assert "ambiguous" in spam.review_reason
        incidents = list_incidents(session, source="complaint")
        by_client = {i.client_id: i for i in incidents}
        assert set(by_client) == {"acme", "bravo", "cgnat-b"}
        assert by_client["acme"].clause_id == "mail.spam"
        assert by_client["acme"].offender == "198.51.100.23:52301"
        assert by_client["bravo"].clause_id == "security.phishing"
        assert by_client["acme"].metrics["reseller_chain"] == ["acme", "resel"]
        assert audit.verify(session).ok


def test_raw_message_is_stored_content_addressed(intake, intake_settings):
    raw = sample("acns.eml")
    result = intake.ingest(raw)
    with intake.store.session() as session:
        (message,) = list_messages(session)
    assert message.reference == result.reference
    import hashlib

    assert message.sha256 == hashlib.sha256(raw).hexdigest()
    stored = intake_settings.data_dir / "intake" / message.raw_ref
    assert stored.read_bytes() == raw
    assert message.sha256 in stored.name


def test_review_queue_cases(intake):
    """No address, no client, vague time straddling a handover: all queued, none dropped."""
    no_client = (b"From: carol@victim.example\nSubject: scan\nDate: Sat, 28 Nov 2026 10:00:00 "
                 b"+0000\n\nPort scan from 192.0.2.77 at 2026-11-28T09:00:00Z\n")
    vague = (b"From: dave@victim.example\nSubject: ssh brute force\n\n"
             b"brute force from 198.51.100.5 at 2026-11-28 11:00:00 (our local time)\n")
    results = [intake.ingest(raw) for raw in
               (sample("freetext-missing.eml"), no_client, vague, sample("xarf-v4.eml"))]
    with intake.store.session() as session:
        queue = review_queue(session)
    reasons = {e.ip: e.review_reason for e in queue}
    assert reasons["192.0.2.77"] == "no client held this address at that time"
    assert "changed hands" in reasons["198.51.100.5"]
    # The complaint with nothing usable has no event but its message is kept and answered.
    assert results[0].status == "empty" and results[0].event_ids == []
    assert len(queue) == 2


def test_assign_and_dismiss_from_the_review_queue(intake):
    spam = intake.ingest(sample("spamcop.eml"))
    (event,) = _events(intake.store, spam.message_id)
    with intake.store.session() as session:
        row = assign_event(session, event.id, "cgnat-a", actor="analyst")
        assert row.status == "attributed" and row.incident_id is not None
        incident = list_incidents(session, client_id="cgnat-a")[0]
        assert incident.clause_id == "mail.spam" and incident.offender == "203.0.113.50"
    no_client = intake.ingest(b"From: e@x.example\nSubject: spam\n\nspam from 192.0.2.9 at "
                              b"2026-11-28T09:00:00Z\n")
    (other,) = _events(intake.store, no_client.message_id)
    with intake.store.session() as session:
        dismiss_event(session, other.id, actor="analyst", note="not ours")
        assert review_queue(session) == []
        actions = [a for (a,) in session.execute(
            select(audit.AuditEntry.action).where(audit.AuditEntry.entity == "intake_event"))]
        assert actions == ["intake.assign", "intake.dismiss"]


def test_acknowledgement_request_and_fbl_silence(intake):
    intake.ingest(sample("acns.eml"))               # complete: acknowledged
    intake.ingest(sample("freetext-missing.eml"))   # nothing usable: asked for details
    intake.ingest(sample("spamcop.eml"))            # a feedback service: no reply
    with intake.store.session() as session:
        mails = {m.to_addrs[0]: m for m in queued(session)}
    assert set(mails) == {"notices@rights-agency.example", "bob@home.example"}
    ack = mails["notices@rights-agency.example"]
    assert ack.kind == "intake-ack" and "AUP-" in ack.subject
    assert ack.headers["Auto-Submitted"] == "auto-replied"
    request = mails["bob@home.example"]
    assert request.kind == "intake-request"
    assert ("Please include all applicable information that will assist DPTgroup in "
            "investigating the compliant.") in request.body
    assert "the address (IP) of the source" in request.body


def test_duplicates_same_content_and_same_event(intake):
    first = intake.ingest(sample("arf-fbl.eml"))
    again = intake.ingest(sample("arf-fbl.eml"))
    assert again.status == "duplicate" and again.event_ids == []
    # The same event reported again in a different mail within the window grows the incident.
    resent = sample("arf-fbl.eml").replace(b"Buy now!", b"Buy now, again!")
    third = intake.ingest(resent)
    with intake.store.session() as session:
        rows = session.execute(select(EventRow).order_by(EventRow.id)).scalars().all()
        assert [r.status for r in rows] == ["attributed", "duplicate"]
        assert rows[1].duplicate_of == rows[0].id and rows[1].message_id == third.message_id
        (incident,) = list_incidents(session, source="complaint")
        assert incident.observations == 2
        assert first.reference != third.reference


def test_low_trust_reporter_goes_to_review(intake_settings, seeded):
    from aupguard.intake.config import ReporterRule

    intake_settings.intake.reporters = [ReporterRule(match="bank.example", trust=10)]
    intake = Intake(intake_settings, seeded, index_ttl=0)
    result = intake.ingest(sample("freetext.eml"))
    (event,) = _events(seeded, result.message_id)
    assert event.status == "review" and event.client_id == "bravo"
    assert "trust 10" in event.review_reason


def test_batch_ingest_matches_single(intake):
    names = ["arf-fbl.eml", "xarf-02.eml", "shadowserver-zip.eml", "acns.eml"]
    results = intake.ingest_many([sample(n) for n in names], batch=3)
    assert [len(r.event_ids) for r in results] == [1, 1, 2, 1]
    with intake.store.session() as session:
        clients = sorted(e.client_id for e in list_events(session, status="attributed"))
    assert clients == ["acme"] * 5


def test_duplicates_inside_one_batch(intake):
    results = intake.ingest_many([sample("acns.eml"), sample("acns.eml"),
                                  sample("acns.eml").replace(b"Dear Sir", b"Dear Madam")])
    assert [r.status for r in results] == ["parsed", "duplicate", "parsed"]
    with intake.store.session() as session:
        messages = {m.id: m for m in list_messages(session)}
        rows = session.execute(select(EventRow).order_by(EventRow.id)).scalars().all()
    assert messages[results[1].message_id].duplicate_of == results[0].message_id
    assert [r.status for r in rows] == ["attributed", "duplicate"]
    assert rows[1].duplicate_of == rows[0].id and rows[1].incident_id == rows[0].incident_id


def test_ipv6_events_are_attributed(intake):
    from aupguard.registry import Client, add_assignment, add_client

    with intake.store.session() as session:
        add_client(session, Client(id="v6net", name="IPv6 client"))
        add_assignment(session, "v6net", "2001:db8:1::/48")
    raw = (b"From: soc@victim.example\nSubject: SSH brute force\nDate: Sat, 28 Nov 2026 "
           b"10:00:00 +0000\n\nbrute force login attempts from 2001:DB8:1::66 and "
           b"2001:db8:ffff::1 at 2026-11-28T09:30:00Z\n")
    result = intake.ingest(raw)
    with intake.store.session() as session:
        events = {e.ip: e for e in list_events(session, message_id=result.message_id)}
    assert set(events) == {"2001:db8:1::66", "2001:db8:ffff::1"}
    assert (events["2001:db8:1::66"].client_id, events["2001:db8:1::66"].status) == (
        "v6net", "attributed")
    assert events["2001:db8:1::66"].clause_id == "security.cracking"
    assert events["2001:db8:ffff::1"].status == "review"
