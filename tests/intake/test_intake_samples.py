"""The project's own complaints, one per format, parse without ../shared."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from aupguard.intake.mime import parse_complaint
from aupguard.intake.parsers import ParseContext, parse
from tests.intake.conftest import SAMPLES, sample


def T(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


OWN = {
    "arf-fbl.eml": ("arf", [("198.51.100.23", 52301, T("2026-11-28T08:59:41"), "spam")]),
    "xarf-02.eml": ("xarf", [("198.51.100.24", None, T("2026-11-28T09:58:12"), "login-attack")]),
    "xarf-v4.eml": ("xarf", [("203.0.113.9", 40000, T("2026-11-28T12:14:07"), "login-attack")]),
    "acns.eml": ("acns", [("198.51.100.77", 51413, T("2026-11-27T21:44:09"), "copyright")]),
    "shadowserver-zip.eml": ("shadowserver", [
        ("198.51.100.30", 49152, T("2026-11-28T03:14:15"), "botnet"),
        ("198.51.100.31", 50123, T("2026-11-28T03:20:00"), "botnet")]),
    "spamcop.eml": ("spamcop", [("203.0.113.50", None, T("2026-11-28T15:20:28"), "spam")]),
    "freetext.eml": ("freetext", [("198.51.100.99", None, T("2026-11-28T13:05:00"),
                                   "phishing")]),
    "freetext-missing.eml": ("freetext", []),
    "hostile.eml": ("freetext", [("198.51.100.66", None, T("2026-11-28T16:55:00"), "scan")]),
}


def test_every_sample_is_covered():
    assert {p.name for p in SAMPLES.glob("*.eml")} == set(OWN)


@pytest.mark.parametrize("name", sorted(OWN))
def test_own_sample_parses(name):
    parser, expected = OWN[name]
    complaint = parse_complaint(sample(name))
    ctx = ParseContext()
    found, events = parse(complaint, ctx)
    assert found == parser
    assert [(e.ip, e.port, e.time, e.category) for e in events] == expected
    assert ctx.errors == []


def test_xarf_v4_is_schema_valid_and_invalid_is_reported():
    complaint = parse_complaint(sample("xarf-v4.eml"))
    ctx = ParseContext()
    _, events = parse(complaint, ctx)
    assert events[0].extra["valid"] is True
    broken = sample("xarf-v4.eml").replace(b'"protocol": "tcp",', b'"protocol": "carrier-pigeon",')
    ctx = ParseContext()
    _, events = parse(parse_complaint(broken), ctx)
    assert events[0].extra["valid"] is False
    assert any("XARF v4 schema" in e and "carrier-pigeon" in e for e in ctx.errors)


def test_free_text_deobfuscates_the_url():
    _, events = parse(parse_complaint(sample("freetext.eml")))
    assert events[0].url == "http://secure-login.bank-example.com/verify"


def test_xarf02_keeps_the_attacked_port_as_evidence_not_source_port():
    _, events = parse(parse_complaint(sample("xarf-02.eml")))
    assert events[0].port is None
    assert events[0].extra["destination_port"] == 22


def test_big_shadowserver_report_takes_the_arrow_path():
    header = '"src_port","timestamp","src_ip","infection","tag","protocol","dst_ip","dst_port"\n'
    rows = "".join(f'{1024 + i % 60000},"2026-11-28 03:{i // 60 % 60:02d}:{i % 60:02d}",'
                   f'"198.51.{100 + i // 65536 % 2}.{i % 250}","mirai","x","tcp",'
                   f'"192.0.2.1",23\n' for i in range(25_000))
    data = (header + rows).encode()
    assert len(data) > 1_000_000
    complaint = parse_complaint(data, filename="2026-11-28-event4_sinkhole-big.csv")
    ctx = ParseContext()
    name, events = parse(complaint, ctx)
    assert name == "shadowserver" and ctx.errors == []
    assert len(events) == 25_000
    assert (events[0].ip, events[0].port, events[0].time) == (
        "198.51.100.0", 1024, T("2026-11-28T03:00:00"))
    assert (events[-1].ip, events[-1].port) == ("198.51.100.249", 1024 + 24_999 % 60000)


def test_xarf_v4_unknown_type_is_rejected_by_the_master_schema():
    raw = sample("xarf-v4.eml").replace(b'"type": "login_attack"', b'"type": "teleportation"')
    ctx = ParseContext()
    _, events = parse(parse_complaint(raw), ctx)
    assert events[0].extra["valid"] is False and events[0].category == "unknown"
    assert any("XARF v4 schema" in e for e in ctx.errors)
