"""Every real sample in ../shared/data/abuse-reports parses to the events read by hand."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from aupguard.intake.events import clause_for
from aupguard.intake.mime import parse_complaint
from aupguard.intake.parsers import ParseContext, parse
from aupguard.intake.parsers.shadowserver import load_catalogue


def T(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


# file -> (parser, [(ip, port, time UTC, category)]) as read from each file by hand.
EXPECTED = {
    "arf/AOL_example_1.eml": ("arf", [("10.17.18.1", None, T("2016-01-19T19:32:40"), "spam")]),
    "arf/Yahoo_example_1.eml": ("arf", [("10.17.18.25", None, T("2016-01-18T23:57:24"), "spam")]),
    "arf/Comcast_example_2.eml": ("arf", [("10.17.18.6", None, T("2016-01-19T15:14:53"), "spam")]),
    "arf/Cox_example_1.eml": ("arf", [("10.17.18.7", None, T("2015-12-21T22:52:30"), "spam")]),
    "arf/Zoho_example_1.eml": ("arf", [("10.17.18.28", None, T("2015-09-07T15:58:04"), "spam")]),
    "arf/arf-17.eml": ("arf", [("192.0.2.3", None, T("2016-04-29T23:34:45"), "spam")]),
    "arf/arf-18.eml": ("arf", [("192.0.2.222", None, T("2015-04-29T23:34:45"),
                                "auth-failure")]),
    # Microsoft JMRP: no Source-IP; the enclosed Received chain names 203.0.113.245
    # (not the 192.0.2.222 of the subject line, nor X-Reporter-IP).
    "arf/arf-22.eml": ("arf", [("203.0.113.245", None, T("2016-04-29T23:34:45"), "spam")]),
    "arf/arf-25.eml": ("arf", [("10.0.0.1", None, T("2020-10-31T18:02:57"), "spam")]),
    "xarf_v02/Blocklistde_Example_1.eml": ("xarf", [("10.0.2.150", None,
                                                      T("2014-01-31T06:19:02"), "spam")]),
    "xarf_v02/Cyscon_Example_1.eml": ("xarf", [("172.16.10.13", None, T("2015-09-23T02:04:18"),
                                                "malware")]),
    "xarf_v02/xarf1.txt": ("xarf", [(None, None, T("2010-06-07T20:32:19"), "phishing")]),
    "xarf_v3/childabuse_sample.json": ("xarf", [("192.0.2.55", 80, T("2018-02-05T14:17:10"),
                                                 "csam")]),
    "xarf_v3/copyright_sample.json": ("xarf", [("192.0.2.55", 54321, T("2018-02-05T18:17:10"),
                                                "copyright")]),
    "xarf_v3/loginattack_sample.json": ("xarf", [("192.0.2.55", 54321,
                                                  T("2018-02-05T14:17:10"), "login-attack")]),
    "xarf_v3/spam_sample.json": ("xarf", [("192.0.2.55", 54321, T("2018-02-05T14:17:10"),
                                           "spam")]),
    "xarf_v4/connection-ddos.json": ("xarf", [("192.0.2.155", 1, T("2025-01-11T09:21:23"),
                                               "ddos")]),
    "xarf_v4/content-csam.json": ("xarf", [("198.51.100.42", None, T("2025-01-20T10:30:00"),
                                            "csam")]),
    "xarf_v4/copyright-p2p.json": ("xarf", [("192.0.2.100", None, T("2025-01-11T13:44:41"),
                                             "copyright")]),
    "xarf_v4/infrastructure-botnet.json": ("xarf", [("198.51.100.25", None,
                                                     T("2025-01-11T15:00:52"), "botnet")]),
    "xarf_v4/messaging-spam.json": ("xarf", [("192.168.1.100", 25, T("2025-01-11T10:59:45"),
                                              "spam")]),
    # The notice carries its XML twice (inline, PGP-signed, and attached): one event.
    "acns/ip-echelon_sample1.eml": ("acns", [("192.168.2.200", 35657, T("2015-11-13T20:35:03"),
                                              "copyright")]),
    "acns/Copyrightcompliance_Example_1.eml": ("acns", [("10.0.2.100", 34890,
                                                         T("2015-09-04T13:19:53"), "copyright")]),
    "shadowserver/2019-10-15-scan_dns-sample-asn.csv.zip.eml": (
        "shadowserver", [("31.42.105.195", 53, T("2019-10-15T01:09:24"), "amplifier")]),
    "shadowserver/event4_ddos_participant.csv": ("shadowserver", [
        ("192.168.0.1", 38055, T("2010-02-10T00:00:00"), "ddos"),
        ("192.168.0.2", 53, T("2010-02-10T00:00:01"), "ddos"),
        ("192.168.0.3", 53, T("2010-02-10T00:00:02"), "ddos")]),
    "shadowserver/event4_honeypot_brute_force.csv": ("shadowserver", [
        ("141.98.1.2", 30123, T("2021-03-27T00:00:00"), "login-attack"),
        ("5.188.3.4", 55690, T("2021-03-27T00:00:00"), "login-attack"),
        ("45.14.5.6", 38636, T("2021-03-27T00:00:00"), "login-attack"),
        ("5.188.6.7", 56385, T("2021-03-27T00:00:00"), "login-attack"),
        ("45.14.7.8", 35802, T("2021-03-27T00:00:00"), "login-attack"),
        ("5.188.9.10", 33289, T("2021-03-27T00:00:00"), "login-attack")]),
    "shadowserver/event4_sinkhole.csv": ("shadowserver", [
        ("190.113.1.2", 17409, T("2021-03-04T00:00:00"), "botnet"),
        ("35.205.9.10", 44696, T("2021-03-04T00:00:00"), "botnet"),
        ("35.197.11.12", 36968, T("2021-03-04T00:00:00"), "botnet")]),
    "shadowserver/scan_ntp.csv": ("shadowserver", [
        ("192.168.0.1", 123, T("2010-02-10T00:00:00"), "amplifier"),
        ("192.168.0.2", 123, T("2010-02-10T00:00:01"), "amplifier"),
        ("192.168.0.3", 123, T("2010-02-10T00:00:02"), "amplifier")]),
    "spamcop/sample2": ("spamcop", [("213.251.151.160", None, T("2015-04-29T21:20:28"),
                                     "spam")]),
}

CLAUSES = {"spam": "mail.spam", "auth-failure": "security.forgery", "csam": "content.csam",
           "copyright": "lawful.ip", "login-attack": "security.cracking",
           "ddos": "security.flood", "amplifier": "security.flood", "botnet": "mail.malware",
           "malware": "mail.malware", "phishing": "security.phishing"}


def parse_file(path, catalogue=None):
    complaint = parse_complaint(path.read_bytes(), filename=path.name)
    ctx = ParseContext(shadowserver_catalogue=catalogue)
    name, events = parse(complaint, ctx)
    return name, events, ctx.errors


def test_every_shared_sample_is_covered(shared_data):
    root = shared_data / "abuse-reports"
    files = {str(p.relative_to(root)) for p in root.rglob("*")
             if p.is_file() and p.name != "INVENTORY.md"}
    assert files == set(EXPECTED), "a sample was added or removed: read it and extend EXPECTED"


@pytest.mark.parametrize("relative", sorted(EXPECTED))
def test_shared_sample_parses_to_hand_read_events(shared_data, relative):
    catalogue = load_catalogue(str(shared_data / "schemas" / "shadowserver" / "reports.json"))
    parser, expected = EXPECTED[relative]
    name, events, errors = parse_file(shared_data / "abuse-reports" / relative, catalogue)
    assert name == parser
    assert [(e.ip, e.port, e.time, e.category) for e in events] == expected
    assert all(e.clause_id == CLAUSES[e.category] == clause_for(e.category) for e in events)
    assert errors == []


def test_xarf1_keeps_the_phishing_url_when_no_address(shared_data):
    _, events, _ = parse_file(shared_data / "abuse-reports" / "xarf_v02" / "xarf1.txt")
    assert events[0].url == "http://domain.tld/images/login.html"
    assert events[0].domain == "domain.tld"


def test_shadowserver_without_catalogue_uses_builtin_table(shared_data):
    name, events, errors = parse_file(
        shared_data / "abuse-reports" / "shadowserver" / "event4_sinkhole.csv", catalogue=None)
    assert name == "shadowserver" and errors == []
    assert [e.category for e in events] == ["botnet"] * 3
    assert events[0].extra["infection"] == "victorygate.b"
