"""Hostile complaints: recorded clear errors, raw kept, nothing crashes, no link fetched."""

from __future__ import annotations

import io
import socket
import zipfile

from hypothesis import HealthCheck, given, settings, strategies as st

from aupguard.intake.api import list_messages
from aupguard.intake.mime import Limits, parse_complaint
from aupguard.intake.parsers import REGISTRY, ParseContext, parse
from tests.intake.conftest import SAMPLES, sample


def mail_with_zip(members: dict[str, bytes], name: str = "2026-11-28-scan_ntp-x.csv.zip") -> bytes:
    from email.message import EmailMessage

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    message = EmailMessage()
    message["From"] = "autoreports@shadowserver.org"
    message["Subject"] = "report"
    message.set_content("attached")
    message.add_attachment(buf.getvalue(), maintype="application", subtype="zip", filename=name)
    return message.as_bytes()


def run(raw: bytes, limits: Limits | None = None):
    complaint = parse_complaint(raw, limits)
    ctx = ParseContext(errors=list(complaint.errors))
    name, events = parse(complaint, ctx)
    return name, events, ctx.errors


def test_zip_bomb_refused_by_ratio():
    raw = mail_with_zip({"2026-11-28-scan_ntp-x.csv": b"\0" * (20 * 1024 * 1024)})
    name, events, errors = run(raw)
    assert events == []
    assert any("compression ratio" in e and "zip bomb" in e for e in errors)


def test_zip_total_uncompressed_cap():
    import os

    members = {f"2026-11-28-scan_ntp-{i}.csv": os.urandom(3000) for i in range(5)}
    _, _, errors = run(mail_with_zip(members),
                       Limits(max_unzipped_bytes=7000, max_part_bytes=20000))
    assert any("uncompressed" in e for e in errors)


def test_huge_part_kept_raw_not_parsed():
    big = b"From: a@b.example\nSubject: big\nContent-Type: text/plain\n\n" + b"A" * 300_000
    _, events, errors = run(big, Limits(max_part_bytes=100_000))
    assert events == [] and any("exceeds the 100000-byte cap" in e for e in errors)


def test_wrong_and_missing_charsets_decode():
    latin = ("From: a@b.example\nSubject: x\nContent-Type: text/plain; charset=utf-8\n\n"
             "Spam von 198.51.100.8 am 2026-11-28T10:00:00Z, Grüße\n").encode("latin-1")
    _, events, _ = run(latin)
    assert [(e.ip, e.category) for e in events] == [("198.51.100.8", "spam")]
    assert "Grüße" in events[0].excerpt
    bogus = latin.replace(b"charset=utf-8", b"charset=no-such-charset-\xff")
    assert [e.ip for e in run(bogus)[1]] == ["198.51.100.8"]


def test_nested_rfc822_and_deep_multipart_are_capped():
    inner = sample("arf-fbl.eml")
    for _ in range(40):
        inner = (b"From: fwd@x.example\nSubject: fwd\nMIME-Version: 1.0\n"
                 b"Content-Type: message/rfc822\n\n" + inner)
    name, events, errors = run(inner)
    assert any("nesting deeper than 20" in e for e in errors)
    shallow = inner
    for _ in range(35):
        shallow = shallow.split(b"Content-Type: message/rfc822\n\n", 1)[1]
    assert run(shallow)[0] == "arf"      # five levels of forwarding still parse


def test_malformed_mime_is_recorded():
    broken = (b"From: a@b.example\nSubject: broken\nMIME-Version: 1.0\n"
              b"Content-Type: multipart/mixed; boundary=\"never-closed\"\n\n"
              b"--never-closed\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
              b"!!!not base64 at all 198.51.100.7!!!\n")
    name, events, errors = run(broken)
    assert any("MIME defect" in e for e in errors)


def test_yaml_alias_bomb_refused_quickly():
    bomb = "---\nCategory: abuse\nReport-Type: spam\na: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
        for i in range(12))
    raw = ("From: a@b.example\nX-XARF: PLAIN\nSubject: x\nContent-Type: text/plain\n\n"
           + bomb).encode()
    name, events, errors = run(raw)
    assert events == []


def test_xml_entity_bomb_refused():
    xml = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 '
           '"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
           '<Infringement><Source><IP_Address>&lol2;</IP_Address></Source></Infringement>')
    raw = f"From: a@b.example\nSubject: notice\nContent-Type: text/plain\n\n{xml}\n".encode()
    name, events, errors = run(raw)
    assert name == "acns" and events == []
    assert any("ACNS XML unreadable" in e for e in errors)


def test_deeply_nested_json_does_not_crash():
    raw = b"[" * 200_000 + b"]" * 200_000
    name, events, errors = run(raw)
    assert events == []


def test_script_in_subject_and_body_is_stored_as_inert_text(intake):
    result = intake.ingest(sample("hostile.eml"))
    with intake.store.session() as session:
        (message,) = list_messages(session)
        from aupguard.intake.api import list_events

        (event,) = list_events(session, message_id=result.message_id)
    assert "<script>" in message.subject          # kept verbatim; the console escapes it
    assert "<script>" in event.excerpt
    assert event.ip == "198.51.100.66" and event.category == "scan"


def test_hostile_message_is_kept_raw_with_its_error(intake, intake_settings):
    raw = b"\xff\xfe\x00 not a mail \x00" * 10
    result = intake.ingest(raw)
    assert result.status in ("failed", "empty")
    with intake.store.session() as session:
        (message,) = list_messages(session)
    assert (intake_settings.data_dir / "intake" / message.raw_ref).read_bytes() == raw


def test_no_link_is_ever_fetched(monkeypatch, shared_data):
    def refuse(*args, **kwargs):
        raise AssertionError("a parser tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    files = list(SAMPLES.glob("*.eml")) + [p for p in (shared_data / "abuse-reports").rglob("*")
                                           if p.is_file()]
    for path in files:
        complaint = parse_complaint(path.read_bytes(), filename=path.name)
        parse(complaint, ParseContext())


PARSER_NAMES = {p.name for p in REGISTRY}
CONTENT_TYPES = ["text/plain", "text/html", "multipart/mixed", "multipart/report",
                 "message/rfc822", "message/feedback-report", "application/json",
                 "application/zip", "text/csv", "application/xml", "bogus/type"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_fuzz_arbitrary_bytes_never_crash(data):
    name, events, errors = run(data)
    assert name in PARSER_NAMES


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(p.name for p in SAMPLES.glob("*.eml"))), st.data())
def test_fuzz_mutated_samples_never_crash(name, data):
    raw = bytearray(sample(name))
    for _ in range(data.draw(st.integers(0, 8))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    name, events, errors = run(bytes(raw[:cut]))
    assert name in PARSER_NAMES
    for event in events:
        assert event.ip is None or ":" in event.ip or event.ip.count(".") == 3


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(CONTENT_TYPES),
                          st.sampled_from(["", "; charset=utf-8", "; charset=bogus",
                                           "; boundary=x", "; boundary=\"\""]),
                          st.text(max_size=300)), min_size=1, max_size=6),
       st.text(max_size=80))
def test_fuzz_structured_mime_detection(parts, subject):
    chunks = [f"From: r@x.example\nSubject: {subject.replace(chr(10), ' ')}\nMIME-Version: 1.0\n"
              f"Content-Type: multipart/mixed; boundary=zz\n\n"]
    for ctype, params, body in parts:
        chunks.append(f"--zz\nContent-Type: {ctype}{params}\n\n{body}\n")
    chunks.append("--zz--\n")
    raw = "".join(chunks).encode("utf-8", "surrogatepass")
    name, events, errors = run(raw)
    assert name in PARSER_NAMES


NASTY = [
    b"From: =?utf-8?q?=00null?= <a\x00b@x.example>\nSubject: caf\xe9 \x00 \xff\xfe 198.51.100.3\n"
    b"Message-ID: <\x00@x>\n\nspam from 198.51.100.3 at 2026-11-28T10:00:00Z \x00\n",
    b'{"Version": "3", "Report": {"ReportType": "Spam\\ud800", "SourceIp": "198.51.100.4", '
    b'"Date": "2026-11-28T10:00:00Z"}, "ReporterInfo": {"ReporterOrgEmail": "x\\u0000@y"}}',
]


def test_nul_bytes_and_surrogates_store_on_every_database(intake_settings, store):
    from aupguard.intake.pipeline import Intake

    intake = Intake(intake_settings, store, index_ttl=0)
    results = [intake.ingest(raw, filename="") for raw in NASTY]
    assert [r.status for r in results] == ["parsed", "parsed"]
    with store.session() as session:
        from aupguard.intake.api import list_events

        ips = sorted(e.ip for e in list_events(session))
    assert ips == ["198.51.100.3", "198.51.100.4"]


def test_a_message_that_breaks_storage_is_recorded_not_lost(intake, monkeypatch):
    from aupguard.intake.pipeline import Intake

    original = Intake._event_rows

    def explode(self, session, plans, messages):
        if any(e.ip == "198.51.100.24" for p, *_ in plans for e in p.events):
            raise RuntimeError("simulated storage failure")
        return original(self, session, plans, messages)

    monkeypatch.setattr(Intake, "_event_rows", explode)
    names = ["arf-fbl.eml", "xarf-02.eml", "acns.eml"]
    results = intake.ingest_many([sample(n) for n in names])
    assert [r.status for r in results] == ["parsed", "failed", "parsed"]
    with intake.store.session() as session:
        failed = [m for m in list_messages(session) if m.status == "failed"]
    assert len(failed) == 1 and "simulated storage failure" in failed[0].error
