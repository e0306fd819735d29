"""The live SMTP listener on loopback: durable before 250, no relay, size cap, STARTTLS."""

from __future__ import annotations

import shutil
import smtplib
import ssl
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest

from aupguard.intake.api import list_events, list_messages
from aupguard.intake.server import IntakeServer
from tests.intake.conftest import sample
from tests.intake.test_intake_samples import OWN
from tests.intake.test_intake_shared import EXPECTED


def send(server: IntakeServer, raw: bytes, to: str = "abuse@localhost",
         starttls: bool = False) -> None:
    with smtplib.SMTP("127.0.0.1", server.port, timeout=20) as client:
        if starttls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            client.starttls(context=context)
        # smtplib sends bytes as they are: give it the CRLF line ends SMTP requires.
        client.sendmail("reporter@example.net", [to],
                        raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def strip_mbox_line(raw: bytes) -> bytes:
    """Saved samples start with an mbox "From " line that no SMTP client sends."""
    return raw.split(b"\n", 1)[1] if raw.startswith(b"From ") else raw


def as_mail(path: Path) -> bytes:
    """Bare JSON/CSV reports travel as attachments, as reporters send them."""
    if path.suffix not in (".json", ".csv"):
        return strip_mbox_line(path.read_bytes())
    message = EmailMessage()
    message["From"] = "reports@reporter.example"
    message["To"] = "abuse@localhost"
    message["Subject"] = f"report {path.name}"
    message.set_content("Report attached.")
    maintype, subtype = ("application", "json") if path.suffix == ".json" else ("text", "csv")
    message.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype,
                           filename=path.name)
    return message.as_bytes()


@pytest.fixture
def server_factory(intake_settings, seeded):
    started = []

    def start(**kwargs) -> IntakeServer:
        intake_settings.intake.listen_port = 0
        server = IntakeServer(intake_settings, seeded, index_ttl=0, **kwargs)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _events_by_message(store) -> list[list[tuple]]:
    with store.session() as session:
        messages = sorted(list_messages(session), key=lambda m: m.id)
        return [[(e.ip, e.port, e.time, e.category)
                 for e in sorted(list_events(session, message_id=m.id), key=lambda e: e.id)]
                for m in messages]


def test_own_samples_through_smtp_come_out_the_same(server_factory, seeded):
    seen = []
    server = server_factory(on_spooled=lambda p: seen.append((p, p.exists(), p.read_bytes())))
    names = sorted(OWN)
    for name in names:
        send(server, sample(name))
        # The hook ran before the 250: the file was complete on disk by then.
        path, existed, content = seen[-1]
        assert existed and sample(name).rstrip()[-40:] in content.replace(b"\r\n", b"\n")
    assert server.wait_idle(30)
    assert server.stats["processed"] == len(names) and server.stats["failed"] == 0
    assert _events_by_message(seeded) == [OWN[n][1] for n in names]
    with seeded.session() as session:
        assert {m.source for m in list_messages(session)} == {"smtp"}


def test_shared_samples_through_smtp_come_out_the_same(server_factory, seeded, shared_data):
    server = server_factory()
    root = shared_data / "abuse-reports"
    names = sorted(EXPECTED)
    for name in names:
        send(server, as_mail(root / name))
    assert server.wait_idle(60)
    assert server.stats["failed"] == 0
    assert _events_by_message(seeded) == [EXPECTED[n][1] for n in names]


def test_message_is_on_disk_before_250_and_survives_a_crash(server_factory, seeded):
    crashed = server_factory()
    crashed._process = lambda paths: None  # the worker "dies" before parsing anything
    send(crashed, sample("acns.eml"))
    assert crashed.wait_idle(10)
    spooled = list((crashed.maildir.root / "new").iterdir())
    assert len(spooled) == 1 and b"900100200" in spooled[0].read_bytes()
    crashed.stop()
    with seeded.session() as session:
        assert list_messages(session) == []
    restarted = server_factory()            # same data dir: picks the spool up
    assert restarted.wait_idle(30)
    with seeded.session() as session:
        (message,) = list_messages(session)
        assert message.parser == "acns" and message.event_count == 1
    assert list((restarted.maildir.root / "new").iterdir()) == []
    assert len(list((restarted.maildir.root / "cur").iterdir())) == 1


def test_no_relay_only_own_addresses(server_factory):
    server = server_factory()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(server, sample("acns.eml"), to="victim@elsewhere.example")
    code, text = refused.value.recipients["victim@elsewhere.example"]
    assert code == 550 and b"relay" in text
    send(server, sample("acns.eml"), to="ABUSE@isp.example")   # case-insensitive
    assert server.stats["refused_rcpt"] == 1 and server.stats["received"] == 1


def test_size_cap_answers_552(server_factory, intake_settings):
    intake_settings.intake.max_message_bytes = 4096
    server = server_factory()
    big = sample("acns.eml") + b"x" * 8000 + b"\n"
    with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as error:
        send(server, big)
    assert error.value.smtp_code == 552
    send(server, sample("spamcop.eml"))    # still serving
    assert server.stats["received"] == 1


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl binary not installed")
def test_starttls_with_configured_certificate(server_factory, intake_settings, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    intake_settings.intake.tls_cert, intake_settings.intake.tls_key = str(cert), str(key)
    server = server_factory()
    with smtplib.SMTP("127.0.0.1", server.port, timeout=20) as client:
        client.ehlo()
        assert client.has_extn("starttls")
    send(server, sample("arf-fbl.eml"), starttls=True)
    assert server.wait_idle(20) and server.stats["processed"] == 1


def test_listener_survives_hostile_mail(server_factory, seeded):
    server = server_factory()
    nested = b"Content-Type: multipart/mixed; boundary=b0\n\n" + b"".join(
        f"--b{i}\nContent-Type: multipart/mixed; boundary=b{i + 1}\n\n".encode()
        for i in range(300))
    for raw in (b"\x00\xff garbage without headers\n", nested, sample("hostile.eml")):
        send(server, raw)
    assert server.wait_idle(30)
    assert server.stats == {**server.stats, "received": 3, "processed": 3, "failed": 0}
    with seeded.session() as session:
        statuses = sorted(m.status for m in list_messages(session))
        nested_row = next(m for m in list_messages(session) if "nesting" in m.error)
    assert "deeper than 20" in nested_row.error
    assert statuses.count("parsed") == 1
