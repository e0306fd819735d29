"""Suppression lists: screening (clear and hashed, addresses and domains, global vs
per-client), complaint escalation, input files, fuzzed normalisation."""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from aupguard.bulkmail.addresses import normalise_address, normalise_arrow, sha256_arrow, sha256_hex
from aupguard.bulkmail.models import Suppression
from aupguard.bulkmail.suppress import (
    add_one, add_suppressions, check_complaint, parse_entries, read_address_file, screen,
    screen_arrow, suppress_from_complaint,
)
from aupguard.errors import InputError
from aupguard.incidents import list_incidents

T0 = datetime(2026, 10, 1, tzinfo=timezone.utc)


def _populate(store):
    with store.session() as s:
        add_suppressions(s, ["Global.One@Example.com", " <two@example.net> ", "not-an-address@",
                             "@blocked.example"], source="import", at=T0)
        add_suppressions(s, ["acme-only@example.org", "@acme-hates.example"], client_id="acme",
                         source="unsubscribe", at=T0 + timedelta(days=1), hashed=True)
        add_suppressions(s, ["beta-only@example.org"], client_id="beta", source="manual", at=T0)


def test_screening_global_and_per_client(store):
    _populate(store)
    mailing = ["global.one@example.com", "TWO@example.net", "acme-only@example.org",
               "x@acme-hates.example", "beta-only@example.org", "anyone@blocked.example",
               "fine@example.com", "broken-address", "fine@example.com"]
    with store.session() as s:
        for_acme = screen(s, mailing, client_id="acme")
        global_only = screen(s, mailing)
    rows = for_acme.suppressed_rows()
    assert [(r["address"], r["kind"], r["scope"]) for r in rows] == [
        ("global.one@example.com", "address", "*"), ("TWO@example.net", "address", "*"),
        ("acme-only@example.org", "address", "acme"), ("x@acme-hates.example", "domain", "acme"),
        ("anyone@blocked.example", "domain", "*")]
    assert rows[2]["source"] == "unsubscribe" and rows[2]["since"] == (T0 + timedelta(days=1)).isoformat()
    # beta's list does not apply to acme; invalid input is counted, not mailed
    assert for_acme.mailable.to_pylist() == ["beta-only@example.org", "fine@example.com", "fine@example.com"]
    assert for_acme.invalid == 1 and for_acme.invalid_samples == ["broken-address"]
    assert [r["address"] for r in global_only.suppressed_rows()] == [
        "global.one@example.com", "TWO@example.net", "anyone@blocked.example"]


def test_hashed_entries_keep_no_clear_text(store):
    _populate(store)
    with store.session() as s:
        acme = s.query(Suppression).filter_by(scope="acme").order_by(Suppression.kind).all()
        assert [(r.kind, r.hashed) for r in acme] == [("address", True), ("domain", True)]
        assert acme[0].value == hashlib.sha256(b"acme-only@example.org").hexdigest()
        assert acme[1].value == hashlib.sha256(b"acme-hates.example").hexdigest()
        everything = " ".join(r.value for r in s.query(Suppression).all())
        assert "acme-only" not in everything and "acme-hates" not in everything
        assert "global.one@example.com" in everything   # the global list was stored in clear


def test_duplicates_and_invalid_are_counted(sqlite_store):
    with sqlite_store.session() as s:
        first = add_suppressions(s, ["a@x.example", "A@X.example", "bad", "@dom.example"], at=T0)
        again = add_suppressions(s, ["a@x.example", "new@x.example"], at=T0)
    # "bad" has no "@" so it is read as a domain, and is not one (no dot): invalid.
    assert (first.added, first.duplicates, first.invalid) == (2, 1, 1)
    assert first.invalid_samples == ["bad"]
    assert (again.added, again.duplicates) == (1, 1)
    with pytest.raises(InputError):
        with sqlite_store.session() as s:
            add_one(s, "no spaces allowed@x")


def test_complaint_after_suppression_escalates(store):
    with store.session() as s:
        assert suppress_from_complaint(s, "acme", "Victim@Example.com", T0, source="fbl", hashed=False) is True
        assert suppress_from_complaint(s, "acme", "victim@example.com", T0 + timedelta(days=3), hashed=False) is False
    with store.session() as s:
        assert check_complaint(s, "acme", "victim@example.com", T0 - timedelta(hours=1)) is False
        assert check_complaint(s, "acme", "victim@example.com", T0) is False   # same instant
        assert check_complaint(s, "acme", "victim@example.com", T0 + timedelta(microseconds=1)) is True
        assert check_complaint(s, "beta", "victim@example.com", T0 + timedelta(days=2)) is False
        assert check_complaint(s, "acme", "<VICTIM@example.com>", T0 + timedelta(days=2)) is True
    with store.session() as s:
        [incident] = list_incidents(s, clause_id="mail.unwanted")
        assert incident.observations == 2
        assert incident.client_id == "acme" and incident.victim == "victim@example.com"
        assert incident.metrics["suppressed_at"] == T0.isoformat()


def test_screen_matches_a_set_oracle():
    rng = random.Random(7)
    universe = [f"u{i}@d{i % 37}.example" for i in range(6000)]
    entries = rng.sample(universe, 2000) + [f"@d{i}.example" for i in (3, 11)]
    hashed = set(rng.sample(entries[:2000], 500))
    supp_rows = []
    for e in entries:
        kind = "domain" if e.startswith("@") else "address"
        value = e.lstrip("@")
        is_h = e in hashed
        supp_rows.append(("*", kind, sha256_hex(value) if is_h else value, is_h, "import", 0))
    cols = list(zip(*supp_rows))
    supp = pa.table({"scope": pa.array(cols[0], pa.large_string()), "kind": pa.array(cols[1], pa.large_string()),
                     "value": pa.array(cols[2], pa.large_string()), "hashed": pa.array(cols[3]),
                     "source": pa.array(cols[4], pa.large_string()), "since_ms": pa.array(cols[5], pa.int64())})
    mailing = rng.sample(universe, 4000)
    result = screen_arrow(pa.array([m.upper() for m in mailing]), supp)
    blocked_addr = {e for e in entries if not e.startswith("@")}
    expected = [m for m in mailing if m in blocked_addr or m.endswith(("@d3.example", "@d11.example"))]
    assert [a.lower() for a in result.suppressed["address"].to_pylist()] == expected
    assert len(result.mailable) == 4000 - len(expected)


def test_read_address_files(tmp_path):
    plain = tmp_path / "list.txt"
    plain.write_text("a@x.example\n b@y.example \nweird,comma@z.example\n")
    assert read_address_file(plain).to_pylist() == ["a@x.example", " b@y.example ", "weird,comma@z.example"]
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("Name,Email\nA,a@x.example\nB,b@y.example\n")
    assert read_address_file(csv_file).to_pylist() == ["a@x.example", "b@y.example"]
    js = tmp_path / "list.json"
    js.write_text('["a@x.example", {"email": "b@y.example"}, 5]')
    assert read_address_file(js).to_pylist() == ["a@x.example", "b@y.example", None]
    with pytest.raises(InputError):
        read_address_file(tmp_path / "missing.txt")


@hsettings(max_examples=15, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=20))
def test_normalise_and_hash_agree_with_scalar(values):
    table = normalise_arrow(pa.array(values, pa.large_string()))
    norms = table["norm"].to_pylist()
    assert norms == [normalise_address(v) for v in values]
    assert sha256_arrow(table["norm"]).to_pylist() == [sha256_hex(n) for n in norms]
    parsed = parse_entries(pa.array(values, pa.large_string()))
    assert parsed.num_rows == len(values)


def test_parquet_snapshot_follows_changes(store, tmp_path):
    _populate(store)
    cache = tmp_path / "cache"
    with store.session() as s:
        first = screen(s, ["new@example.com", "global.one@example.com"], cache_dir=cache)
    assert [r["address"] for r in first.suppressed_rows()] == ["global.one@example.com"]
    snapshots = sorted(p.name for p in cache.glob("*.parquet"))
    assert len(snapshots) == 1
    with store.session() as s:   # the snapshot is reused, then rebuilt after an insert
        assert screen(s, ["global.one@example.com"], cache_dir=cache).suppressed.num_rows == 1
        add_one(s, "new@example.com", at=T0)
    with store.session() as s:
        again = screen(s, ["new@example.com", "global.one@example.com"], cache_dir=cache)
    assert [r["address"] for r in again.suppressed_rows()] == ["new@example.com", "global.one@example.com"]
    assert sorted(p.name for p in cache.glob("*.parquet")) != snapshots
    assert len(list(cache.glob("*.parquet"))) == 1


def test_complaint_suppression_follows_the_configuration(sqlite_store, tmp_path, monkeypatch):
    cfg = tmp_path / "aupguard.toml"
    cfg.write_text("[bulkmail]\nhash_suppressions = true\n")
    monkeypatch.setenv("AUPGUARD_CONFIG", str(cfg))
    with sqlite_store.session() as s:
        suppress_from_complaint(s, "acme", "fbl@example.com", T0)
        [row] = s.query(Suppression).all()
        assert row.hashed and row.value == sha256_hex("fbl@example.com") and row.source == "fbl"
        assert check_complaint(s, "acme", "FBL@example.com", T0 + timedelta(days=1)) is True
