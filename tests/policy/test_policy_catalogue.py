"""The AUP as data: clause spans, versions in force by time, change notices, acceptance."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from aupguard.errors import InputError
from aupguard.policy import (
    CLAUSE_IDS,
    acceptances,
    clause_at,
    post_version,
    record_activity,
    shipped_version,
    version_at,
)
from aupguard.policy.catalogue import shipped_text
from aupguard.registry import add_client
from aupguard.registry.models import Client
from aupguard.store import outbox

DESIGN_IDS = {
    "lawful.ip", "lawful.privacy", "lawful.abusive", "lawful.exploit", "security.scan",
    "security.monitor", "security.flood", "security.forgery", "security.blacklisting",
    "security.cracking", "security.phishing", "security.pharming", "security.itar", "mail.spam",
    "mail.relay", "mail.optin", "mail.roaming-auth", "mail.unwanted", "mail.purchased-lists",
    "mail.malware", "content.csam", "traffic.asn-cdr", "general.resellers", "general.changes",
    "general.complaints",
}


def test_every_clause_is_a_non_empty_span_of_the_shipped_text():
    text = shipped_text()
    version = shipped_version()
    assert DESIGN_IDS <= set(CLAUSE_IDS)
    for cid in CLAUSE_IDS:
        clause = version.clause(cid)
        assert 0 <= clause.start < clause.end <= len(text)
        assert clause.text == text[clause.start:clause.end]
        assert len(clause.text.strip()) > 20
    assert "10% of client" in version.clause("traffic.asn-cdr").text
    assert "open mail relay" in version.clause("mail.relay").text
    assert version.clause("security.flood").text.startswith("Interference with service")


def test_posting_changes_clause_after_not_before(store):
    posted_at = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
    new_text = shipped_text().replace("mail-bombing, flood,", "mail-bombing, flood, amplification,")
    with store.session() as s:
        add_client(s, Client(id="c1", name="One", abuse_email="abuse@one.example"))
        add_client(s, Client(id="c2", name="Two", emails=["noc@two.example"]))
        add_client(s, Client(id="c3", name="No contact"))
        post_version(s, new_text, "2026-11", at=posted_at, actor="legal@isp")
    with store.session() as s:
        before = clause_at(s, "security.flood", posted_at - timedelta(seconds=1))
        after = clause_at(s, "security.flood", posted_at)
        assert before.version == "2014" and "amplification" not in before.text
        assert after.version == "2026-11" and "amplification" in after.text
        assert version_at(s, posted_at + timedelta(days=300)).version == "2026-11"
        notices = [m for m in outbox.queued(s, "policy-change")]
        assert sorted(m.client_id for m in notices) == ["c1", "c2"]
        assert all("effective upon posting" in m.body or "in effect from" in m.body for m in notices)
        assert "+limitation, mail-bombing, flood, amplification" in notices[0].body.replace("\n", "")\
            or "amplification" in notices[0].body


def test_reposting_or_unmatched_clauses_are_refused(sqlite_store):
    with sqlite_store.session() as s:
        with pytest.raises(InputError, match="exists already"):
            post_version(s, shipped_text(), "2014")
        with pytest.raises(InputError, match="security.flood: end phrase"):
            post_version(s, shipped_text().replace("broadcast attacks.", "broadcasts."), "v2")
        with pytest.raises(InputError, match="not found"):
            post_version(s, "A short policy.", "v3", markers={"x.y": {"start": "nope", "end": "."}})


def test_custom_clause_map(sqlite_store):
    with sqlite_store.session() as s:
        post_version(s, "Rule one: no spam. Rule two: no floods.", "mini",
                     markers={"mail.spam": {"start": "Rule one", "end": "no spam."},
                              "security.flood": {"start": "Rule two", "end": "floods."}},
                     at=datetime(2026, 1, 1, tzinfo=timezone.utc))
        assert clause_at(s, "mail.spam").text == "Rule one: no spam."
        with pytest.raises(InputError, match="not in AUP version mini"):
            clause_at(s, "lawful.ip")


def test_acceptance_by_first_activity_after_posting(store):
    posted_at = datetime(2026, 11, 1, tzinfo=timezone.utc)
    with store.session() as s:
        add_client(s, Client(id="c1", name="One", abuse_email="a@one.example"))
        post_version(s, shipped_text() + "\nAddendum.", "2026-11", at=posted_at)
    with store.session() as s:
        assert record_activity(s, "c1", "traffic", posted_at - timedelta(hours=1)).version == "2014"
        first = record_activity(s, "c1", "login", posted_at + timedelta(hours=2))
        record_activity(s, "c1", "traffic", posted_at + timedelta(hours=5))
        record_activity(s, "c1", "api", posted_at + timedelta(hours=1))   # reported late, earlier
    with store.session() as s:
        rows = {r.version: r for r in acceptances(s)}
        assert rows["2026-11"].activity == "api"
        assert rows["2026-11"].accepted_at == posted_at + timedelta(hours=1)
        assert first.version == "2026-11"
        with pytest.raises(ValueError):
            record_activity(s, "c1", "telepathy")


def test_traffic_records_acceptance_once_per_client_and_version(sqlite_store):
    import pyarrow as pa

    from aupguard.policy.acceptance import TrafficAcceptance

    posted_at = datetime(2026, 11, 1, tzinfo=timezone.utc)
    with sqlite_store.session() as s:
        add_client(s, Client(id="c1", name="One"))
        add_client(s, Client(id="c2", name="Two"))
        post_version(s, shipped_text() + "\nAddendum.", "2026-11", at=posted_at)
    ts = pa.timestamp("ms", tz="UTC")
    batch = pa.table({"start": pa.array([posted_at + timedelta(minutes=5)] * 3, ts),
                      "client": pa.array(["c1", None, "c1"])})
    tracker = TrafficAcceptance(sqlite_store)
    assert tracker.observe(batch) == 1
    assert tracker.observe(batch) == 0
    later = pa.table({"start": pa.array([posted_at + timedelta(hours=1)], ts),
                      "client": pa.array(["c2"])})
    assert tracker.observe(later) == 1
    with sqlite_store.session() as s:
        rows = {(r.client_id, r.version): r for r in acceptances(s, "2026-11")}
    assert set(rows) == {("c1", "2026-11"), ("c2", "2026-11")}
    assert rows[("c1", "2026-11")].activity == "traffic"
    assert rows[("c1", "2026-11")].accepted_at == posted_at + timedelta(minutes=5)
