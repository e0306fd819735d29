"""The relay/auth probe against a private Postfix (open and closed) and aiosmtpd."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from aupguard.errors import InputError
from aupguard.incidents import Finding, list_incidents, report
from aupguard.registry import Client, add_assignment, add_client
from aupguard.reputation.config import ReputationSettings
from aupguard.reputation.models import SmtpProbe
from aupguard.reputation.probe import (
    DataForbidden, RecordingSMTP, probe, probe_registered, relay_variants, resolve_target,
)
from tests.reputation.smtp_servers import AioSmtp, CountingSMTP, PrivatePostfix, data_commands

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
pytestmark = pytest.mark.filterwarnings(
    "ignore:Requiring AUTH while not requiring TLS:UserWarning")  # the lab server, on purpose
SETTINGS = ReputationSettings(probe_timeout=5, probe_pause=0, probe_interval_hours=24)


@pytest.fixture
def mailco(sqlite_store):
    """Loopback belongs to a client, as a client's mail server would."""
    with sqlite_store.session() as s:
        add_client(s, Client(id="mailco", name="Mail Co", mail_servers=[]))
        add_assignment(s, "mailco", "127.0.0.0/24")
    return sqlite_store


@pytest.fixture
def postfix_root():
    """Postfix daemons run as user postfix and must reach their queue: pytest's tmp_path
    is under a 0700 root directory, so use a world-traversable temporary directory."""
    if shutil.which("postfix") is None:
        pytest.skip("postfix not installed (scripts/install installs Debian's postfix)")
    root = Path(tempfile.mkdtemp(prefix="aupguard-postfix-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _postfix(root: Path, open_relay: bool) -> PrivatePostfix:
    server = PrivatePostfix(root / ("open" if open_relay else "closed"), open_relay)
    server.start()
    return server


def test_postfix_open_relay_is_found_without_data(mailco, postfix_root):
    server = _postfix(postfix_root, open_relay=True)
    try:
        with mailco.session() as s:
            [result] = probe(s, SETTINGS, f"127.0.0.1:{server.port}", at=T0)
        # The first disconnect is the fixture's readiness check (commands=0/0).
        disconnects = [l for l in server.wait_disconnects(2) if "ehlo=" in l]
        queued = server.queued_files()
    finally:
        server.stop()
    assert result.verdict == "open_relay" and result.client_id == "mailco"
    assert "plain" in result.accepted and "null-sender" in result.accepted
    assert result.auth_offered is False and result.auth_required is False
    assert len(disconnects) == 1 and data_commands(disconnects) == 0
    assert "rset=" in disconnects[0] and "quit=1" in disconnects[0]
    assert queued == []
    assert not any(line.startswith("C: DATA") or line.startswith("C: data")
                   for line in result.transcript)
    with mailco.session() as s:
        [incident] = list_incidents(s, clause_id="mail.relay")
        assert incident.client_id == "mailco"
        assert incident.offender == f"127.0.0.1:{server.port}"
        transcript = incident.evidence[0]["transcript"]
        assert "RCPT TO:<relaytest@relay-test.invalid>" in transcript and "S: 250" in transcript
        assert list_incidents(s, clause_id="mail.roaming-auth") == []


def test_postfix_closed_relay_is_closed_and_ends_a_previous_incident(mailco, postfix_root):
    server = _postfix(postfix_root, open_relay=False)
    with mailco.session() as s:   # an open-relay incident from an earlier probe
        report(s, Finding(source="monitor", rule="smtp_relay_probe", clause_id="mail.relay",
                          key=f"smtp_relay:127.0.0.1:{server.port}", first_seen=T0 - timedelta(days=1),
                          last_seen=T0 - timedelta(days=1), client_id="mailco"))
    try:
        with mailco.session() as s:
            [result] = probe(s, SETTINGS, f"127.0.0.1:{server.port}", at=T0)
        # The first disconnect is the fixture's readiness check (commands=0/0).
        disconnects = [l for l in server.wait_disconnects(2) if "ehlo=" in l]
    finally:
        server.stop()
    assert result.verdict == "closed", result.transcript
    assert result.accepted == []
    rcpts = [v["rcpt"][0] for v in result.variants if "rcpt" in v]
    assert rcpts and all(code >= 500 for code in rcpts)
    assert any("Relay access denied" in v["rcpt"][1] for v in result.variants if "rcpt" in v)
    assert data_commands(disconnects) == 0
    with mailco.session() as s:
        [earlier] = list_incidents(s, clause_id="mail.relay")
        assert earlier.status == "ended"
        assert s.query(SmtpProbe).one().verdict == "closed"


@pytest.mark.parametrize("auth_required", [True, False])
def test_aiosmtpd_auth_variants(mailco, auth_required):
    server = AioSmtp(auth_required=auth_required)
    CountingSMTP.data_calls = 0
    server.start()
    try:
        with mailco.session() as s:
            [result] = probe(s, SETTINGS, f"127.0.0.1:{server.port}", at=T0)
    finally:
        server.stop()
    assert CountingSMTP.data_calls == 0
    assert result.auth_offered is True
    assert "LOGIN" in result.auth_mechanisms and "PLAIN" in result.auth_mechanisms
    with mailco.session() as s:
        relay = list_incidents(s, clause_id="mail.relay")
        roaming = list_incidents(s, clause_id="mail.roaming-auth")
    if auth_required:
        assert result.verdict == "closed" and result.auth_required is True
        assert all(v["mail"][0] == 530 for v in result.variants)
        assert relay == [] and roaming == []
    else:
        assert result.verdict == "open_relay" and result.auth_required is False
        assert "plain" in result.accepted
        assert [i.client_id for i in relay] == ["mailco"]
        assert [i.clause_id for i in roaming] == ["mail.roaming-auth"]


def test_targets_outside_client_space_are_refused(sqlite_store, mailco):
    with sqlite_store.session() as s, pytest.raises(InputError, match="not inside any client"):
        probe(s, SETTINGS, "192.0.2.25:25")
    with sqlite_store.session() as s, pytest.raises(InputError, match="loopback lab targets"):
        probe(s, SETTINGS, "192.0.2.25:25", allow_unassigned=True)


def test_unassigned_loopback_only_with_flag(tmp_path):
    from aupguard.store.db import Store

    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    store.migrate()
    server = AioSmtp(auth_required=True)
    server.start()
    try:
        with store.session() as s, pytest.raises(InputError):
            probe(s, SETTINGS, f"127.0.0.2:{server.port}")
        with store.session() as s:
            [result] = probe(s, SETTINGS, f"127.0.0.1:{server.port}", allow_unassigned=True)
        assert result.verdict == "closed" and result.client_id is None
    finally:
        server.stop()
        store.dispose()


def test_rate_limit_and_schedule(mailco):
    server = AioSmtp(auth_required=False)
    server.start()
    try:
        with mailco.session() as s:
            from aupguard.registry.models import ClientRow

            s.get(ClientRow, "mailco").mail_servers = [f"127.0.0.1:{server.port}"]
        with mailco.session() as s:
            first = probe_registered(s, SETTINGS, at=T0)
        with mailco.session() as s:
            again = probe_registered(s, SETTINGS, at=T0 + timedelta(hours=1))
        with mailco.session() as s:
            later = probe_registered(s, SETTINGS, at=T0 + timedelta(hours=25))
    finally:
        server.stop()
    assert [r.verdict for r in first] == ["open_relay"] and not first[0].skipped
    assert again[0].skipped.startswith("probed at") and again[0].transcript == []
    assert later[0].verdict == "open_relay" and not later[0].skipped
    with mailco.session() as s:
        assert s.query(SmtpProbe).count() == 2
        [incident] = list_incidents(s, clause_id="mail.relay")
        assert incident.observations == 2


def test_unreachable_port_is_not_a_finding(mailco):
    from tests.reputation.smtp_servers import free_tcp_port

    with mailco.session() as s:
        [result] = probe(s, SETTINGS, f"127.0.0.1:{free_tcp_port()}")
        assert result.verdict == "unreachable" and "Refused" in result.error
        assert list_incidents(s) == []


def test_client_class_refuses_data():
    smtp = RecordingSMTP()
    with pytest.raises(DataForbidden):
        smtp.data("x")
    with pytest.raises(DataForbidden):
        smtp.send("DATA\r\n")
    with pytest.raises(DataForbidden):
        smtp.send(b"bdat 10 LAST\r\n")


def test_variants_and_targets():
    names = [v.name for v in relay_variants("[192.0.2.1]", "out.test")]
    assert len(names) == len(set(names)) == 11
    assert relay_variants("mx.x", "o.t")[7].rcpt_to == "@mx.x:relaytest@o.t"
    assert resolve_target("192.0.2.1:587") == ("192.0.2.1", 587)
    assert resolve_target("[2001:db8::1]:25") == ("2001:db8::1", 25)
    assert resolve_target("2001:db8::1") == ("2001:db8::1", None)
    with pytest.raises(InputError):
        resolve_target("host:port")
