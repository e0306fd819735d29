"""Opt-in records (verified, unverified, forged), requests with deadlines, production."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone

import pytest

from aupguard.bulkmail.optin import (
    answer_request, escalate_overdue, import_file, import_records, list_requests, produce,
    records_for, request_records,
)
from aupguard.errors import InputError
from aupguard.incidents import list_incidents
from aupguard.registry import Client, add_client
from aupguard.store.outbox import queued

T0 = datetime(2026, 9, 1, 10, 0, tzinfo=timezone.utc)
CONFIRM_HEADERS = ("From: Alice <alice@example.com>\r\nTo: lists@sender.example\r\n"
                   "Date: Tue, 01 Sep 2026 10:05:00 +0000\r\nSubject: confirm\r\n"
                   "Message-ID: <c1@example.com>\r\n")


def _records() -> list[dict]:
    return [
        {"address": "Alice@Example.com", "subscribed_at": "2026-09-01T10:00:00Z",
         "source": "web form https://sender.example/join", "confirmed_at": "2026-09-01T10:05:00Z",
         "confirm_from": "Alice <alice@example.com>", "confirm_headers": CONFIRM_HEADERS},
        {"address": "bob@example.com", "subscribed_at": "2026-09-01T10:00:00Z", "source": "fair"},
        {"address": "carol@example.com", "subscribed_at": "2026-09-02T10:00:00Z",
         "confirmed_at": "2026-09-01T09:00:00Z", "confirm_from": "carol@example.com"},
        {"address": "dave@example.com", "subscribed_at": "2026-09-01T10:00:00Z",
         "confirmed_at": "2026-09-01T11:00:00Z", "confirm_from": "someone-else@example.com"},
        {"address": "erin@example.com", "subscribed_at": "2026-09-01T10:00:00Z",
         "confirmed_at": "2026-09-01T11:00:00Z", "confirm_from": "erin@example.com",
         "confirm_headers": {"From": "mallory@example.net", "Date": "Tue, 01 Sep 2026 11:00:00 +0000"}},
        {"address": "frank@example.com", "subscribed_at": "2026-09-01T10:00:00Z",
         "confirmed_at": "2026-09-01T11:00:00Z", "confirm_from": "frank@example.com",
         "confirm_headers": {"From": "frank@example.com", "Date": "Mon, 01 Jan 2024 00:00:00 +0000"}},
        {"address": "not an address", "subscribed_at": "2026-09-01T10:00:00Z"},
        {"address": "gina@example.com", "subscribed_at": "yesterday"},
        "garbage",
    ]


@pytest.fixture
def acme(store):
    with store.session() as s:
        add_client(s, Client(id="acme", name="Acme Mailers", abuse_email="abuse@acme.example"))
    return store


def test_records_are_classified(acme):
    with acme.session() as s:
        result = import_records(s, "acme", _records(), at=T0)
    assert (result.imported, result.verified, result.unverified, result.forged, result.rejected) == (6, 1, 4, 1, 3)
    assert any("record 7" in e and "not an e-mail address" in e for e in result.errors)
    assert any("record 8" in e and "ISO-8601" in e for e in result.errors)
    with acme.session() as s:
        by = {r.address: r for r in records_for(s, "acme")}
    assert by["alice@example.com"].status == "verified"
    assert by["alice@example.com"].confirm_headers["Message-ID"] == "<c1@example.com>"
    assert by["bob@example.com"].reason == "no confirmation event"
    assert by["carol@example.com"].status == "forged" and "before the subscription" in by["carol@example.com"].reason
    assert "someone-else@example.com" in by["dave@example.com"].reason
    assert "mallory@example.net" in by["erin@example.com"].reason
    assert "dated 2024-01-01" in by["frank@example.com"].reason


def test_import_csv_file_and_bad_header(acme, tmp_path):
    path = tmp_path / "records.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["address", "subscribed_at", "source", "confirmed_at",
                                           "confirm_from", "confirm_headers"])
        w.writeheader()
        w.writerow({"address": "alice@example.com", "subscribed_at": "2026-09-01T10:00:00Z",
                    "confirmed_at": "2026-09-01T10:05:00Z", "confirm_from": "alice@example.com",
                    "confirm_headers": CONFIRM_HEADERS})
    with acme.session() as s:
        assert import_file(s, "acme", path).verified == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("email,when\nx@y.z,now\n")
    with acme.session() as s, pytest.raises(InputError, match="lacks column"):
        import_file(s, "acme", bad)


def test_request_past_deadline_escalates(acme):
    with acme.session() as s:
        req = request_records(s, "acme", "Bob@example.com", days=7, at=T0, ref="case:4")
        req_id = req.id
        [mail] = queued(s, kind="optin-request")
        assert mail.to_addrs == ["abuse@acme.example"] and "bob@example.com" in mail.body
    with acme.session() as s:
        assert escalate_overdue(s, now=T0 + timedelta(days=6)) == []
    with acme.session() as s:
        [escalated] = escalate_overdue(s, now=T0 + timedelta(days=7, seconds=1))
        assert escalated.id == req_id and escalated.status == "escalated"
    with acme.session() as s:
        [incident] = list_incidents(s, clause_id="mail.optin")
        assert incident.client_id == "acme" and incident.victim == "bob@example.com"
        assert "deadline" in incident.summary
        assert escalate_overdue(s, now=T0 + timedelta(days=30)) == []   # once only
        with pytest.raises(InputError, match="already escalated"):
            answer_request(s, req_id, note="late")


def test_answers_record_the_outcome(acme):
    with acme.session() as s:
        import_records(s, "acme", _records(), at=T0)
        ok = request_records(s, "acme", "alice@example.com", at=T0)
        forged = request_records(s, "acme", "carol@example.com", at=T0)
    with acme.session() as s:
        a = answer_request(s, ok.id, note="see records", at=T0 + timedelta(days=1))
        b = answer_request(s, forged.id, at=T0 + timedelta(days=20))
        assert (a.status, a.outcome, a.incident_id) == ("answered", "verified", None)
        assert b.outcome == "forged" and b.incident_id is not None
        assert "after the deadline" in b.answer
        assert [r.id for r in list_requests(s, "acme", status="answered")] == [forged.id, ok.id]
        [incident] = list_incidents(s, clause_id="mail.optin")
        assert incident.summary.endswith("forged")


def test_produce_json_and_csv(acme, tmp_path):
    with acme.session() as s:
        import_records(s, "acme", _records(), at=T0)
        assert produce(s, "acme", tmp_path / "alice.json", address="alice@example.com") == 1
        assert produce(s, "acme", tmp_path / "all.csv") == 6
    data = json.loads((tmp_path / "alice.json").read_text())
    [rec] = data["records"]
    assert rec["status"] == "verified" and rec["confirm_headers"]["From"] == "Alice <alice@example.com>"
    rows = list(csv.DictReader((tmp_path / "all.csv").open()))
    assert sorted(r["status"] for r in rows) == ["forged", "unverified", "unverified", "unverified",
                                                  "unverified", "verified"]


def test_request_for_unknown_client_is_refused(acme):
    with acme.session() as s, pytest.raises(InputError, match="does not exist"):
        request_records(s, "nobody", "a@b.example")


from hypothesis import HealthCheck, given, settings as hsettings, strategies as st  # noqa: E402

_values = st.one_of(st.none(), st.text(max_size=30), st.integers(), st.booleans(),
                    st.dictionaries(st.text(max_size=5), st.text(max_size=10), max_size=3))
_record = st.one_of(_values, st.fixed_dictionaries({}, optional={
    k: _values for k in ("address", "subscribed_at", "source", "confirmed_at", "confirm_from",
                         "confirm_headers")}))


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_record, max_size=8))
def test_hostile_records_are_counted_never_crash(sqlite_store, records):
    with sqlite_store.session() as s:
        result = import_records(s, "fuzz", records, at=T0)
        s.rollback()
    assert result.imported + result.rejected == len(records)
    assert result.verified + result.unverified + result.forged == result.imported
