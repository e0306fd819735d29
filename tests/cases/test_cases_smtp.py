"""Notices delivered to a real SMTP server on loopback (aiosmtpd), retries, replies threading back."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from aupguard.cases import evidence
from aupguard.cases import service as cases
from aupguard.store.outbox import OutboxMessage
from aupguard.store.types import utcnow
from tests.pg_server import free_port

from .conftest import add_incident

COMPLAINT = (b"Subject: brute force\r\n\r\nSSH brute force against our host 203.0.113.9 "
             b"from 192.0.2.10, 1840 attempts between 10:00 and 10:20 UTC.\r\n")


class Sink:
    """Accepts mail, or answers with the queued SMTP codes first (to test retries)."""

    def __init__(self):
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.answers: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        if self.answers:
            return self.answers.pop(0)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_sink():
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    controller.start()
    yield sink, controller.port
    controller.stop()


def _smtp(settings, port):
    settings.cases.smtp_enabled = True
    settings.cases.smtp_port = port
    settings.cases.smtp_timeout_seconds = 5
    settings.cases.from_address = "abuse@isp.example"
    settings.cases.reply_domain = "isp.example"


def test_notice_delivered_with_clause_and_evidence_and_reply_threads(registry, settings, smtp_sink):
    sink, port = smtp_sink
    _smtp(settings, port)
    sha = evidence.put(settings, COMPLAINT, "complaint", {})
    add_incident(registry, clause="security.cracking", client="c1", source="complaint",
                 evidence=[{"sha256": sha}], summary="SSH brute force")
    with registry.session() as s:
        (case,) = cases.ingest_incidents(s, settings)
        message = cases.send_notice(s, settings, case.id, "alice")
        clause = cases.directory.clause_text(s, "security.cracking", case.first_seen)
    with registry.session() as s:
        report = cases.deliver_outbox(s, settings)
        assert report.sent == [message.id] and not report.failed
        assert s.get(OutboxMessage, message.id).status == "sent"
    ((mail_from, rcpts, raw),) = sink.messages
    assert mail_from == "abuse@isp.example"
    assert rcpts == ["noc@client1.example", "abuse@reseller.example", "abuse@wholesale.example"]
    delivered = email.message_from_bytes(raw, policy=email.policy.default)
    body = " ".join(delivered.get_content().split())
    assert " ".join(clause.text.split()) in body
    assert "1840 attempts between 10:00 and 10:20 UTC" in body
    assert delivered["X-Aupguard-Case"] == str(case.id)
    reply_to = delivered["Reply-To"]
    assert reply_to.startswith(f"abuse+case-{case.id}-") and reply_to.endswith("@isp.example")

    answer = EmailMessage()
    answer["From"] = "noc@client1.example"
    answer["To"] = reply_to
    answer["Subject"] = "Re: " + delivered["Subject"]
    answer["In-Reply-To"] = delivered["Message-ID"]
    answer.set_content("The host was compromised; reinstalled and SSH keys rotated.")
    with registry.session() as s:
        threaded = cases.thread_reply(s, answer.as_bytes(), settings=settings)
        assert threaded.id == case.id and threaded.status == "awaiting_client"
        replies = [t for t in cases.timeline(s, case.id) if t.kind == "client.reply"]
        assert replies[-1].text == "The host was compromised; reinstalled and SSH keys rotated."
        assert replies[-1].data["from"] == "noc@client1.example"
        kinds = {i.kind for i in cases.case_evidence(s, settings, case.id)}
        assert "client-reply" in kinds  # the raw answer is kept as evidence
    # Threading by the Message-ID alone works too (client replied from another address).
    del answer["To"]
    answer["To"] = "abuse@isp.example"
    with registry.session() as s:
        assert cases.thread_reply(s, answer.as_bytes(), settings=settings).id == case.id


def test_forged_or_unknown_reply_threads_nothing(lite_registry, settings):
    registry = lite_registry
    add_incident(registry, client="c1")
    with registry.session() as s:
        (case,) = cases.ingest_incidents(s, settings)
        good = cases.keys.reply_address(settings, case.id)
        forged = good.replace(f"case-{case.id}-", f"case-{case.id + 1}-")
        for to in (forged, "abuse@localhost", f"abuse+case-{case.id}-0000000000@localhost"):
            raw = f"From: x@y.example\r\nTo: {to}\r\nSubject: [case #{case.id}]\r\n\r\nhi\r\n"
            assert cases.thread_reply(s, raw.encode(), settings=settings) is None
        assert [t for t in cases.timeline(s, case.id) if t.kind == "client.reply"] == []


def test_retries_with_backoff_then_permanent_failure(lite_registry, settings, smtp_sink):
    registry = lite_registry
    sink, port = smtp_sink
    _smtp(settings, port)
    settings.cases.delivery_backoff_seconds = 60
    add_incident(registry, client="c1")
    add_incident(registry, client="c2", clause="mail.spam")
    now = utcnow()
    with registry.session() as s:
        a, b = (cases.send_notice(s, settings, c.id, "alice")
                for c in sorted(cases.ingest_incidents(s, settings), key=lambda c: c.client_id))
        a_id, b_id = a.id, b.id
    sink.answers = ["451 4.3.0 try again later", "550 5.7.1 rejected"]
    with registry.session() as s:
        first = cases.deliver_outbox(s, settings, now=now)
        assert (first.deferred, first.failed, first.sent) == ([a_id], [b_id], [])
        row = s.get(OutboxMessage, a_id)
        assert row.attempts == 1 and row.next_attempt_at == now + timedelta(seconds=60)
        assert "451" in row.last_error
        assert s.get(OutboxMessage, b_id).status == "failed"
    with registry.session() as s:
        assert cases.deliver_outbox(s, settings, now=now + timedelta(seconds=30)).sent == []
        assert cases.deliver_outbox(s, settings, now=now + timedelta(seconds=61)).sent == [a_id]
    assert len(sink.messages) == 1


def test_relay_down_defers_and_disabled_sends_nothing(lite_registry, settings):
    registry = lite_registry
    add_incident(registry, client="c1")
    with registry.session() as s:
        (case,) = cases.ingest_incidents(s, settings)
        mid = cases.send_notice(s, settings, case.id, "alice").id
        off = cases.deliver_outbox(s, settings)
        assert not off.enabled and "smtp_enabled" in off.message
        _smtp(settings, free_port())  # nothing listens there
        settings.cases.delivery_max_attempts = 2
        now = utcnow()
        down = cases.deliver_outbox(s, settings, now=now)
        assert down.deferred == [mid] and "unreachable" in down.errors[mid]
        again = cases.deliver_outbox(s, settings, now=now + timedelta(hours=1))
        assert again.failed == [mid]
        assert s.get(OutboxMessage, mid).status == "failed"


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=2000))
def test_thread_reply_survives_garbage(sqlite_store, settings, raw):
    with sqlite_store.session() as s:
        assert cases.thread_reply(s, raw, settings=settings) is None


def test_html_only_reply_is_threaded_as_text(lite_registry, settings):
    registry = lite_registry
    add_incident(registry, client="c1")
    with registry.session() as s:
        (case,) = cases.ingest_incidents(s, settings)
        reply = EmailMessage()
        reply["From"] = "noc@client1.example"
        reply["To"] = cases.keys.reply_address(settings, case.id)
        reply["Subject"] = "Re: notice"
        reply.set_content("<html><script>alert(1)</script><p>Fixed &amp; patched</p></html>",
                          subtype="html")
        assert cases.thread_reply(s, reply.as_bytes(), settings=settings).id == case.id
        (entry,) = [t for t in cases.timeline(s, case.id) if t.kind == "client.reply"]
        assert entry.text == "Fixed & patched"
