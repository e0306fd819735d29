"""Spam-trap hits raise a purchased-list indicator and a finding."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from aupguard.bulkmail.config import BulkmailSettings
from aupguard.bulkmail.traps import hits, indicators, is_trap, record_trap_hit
from aupguard.errors import InputError
from aupguard.incidents import list_incidents

T0 = datetime(2026, 10, 5, tzinfo=timezone.utc)
TRAPS = BulkmailSettings(trap_addresses=["Trap1@Honey.example"], trap_domains=["@pot.example."])


def test_is_trap_reads_the_configuration(tmp_path, monkeypatch):
    cfg = tmp_path / "aupguard.toml"
    cfg.write_text('[bulkmail]\ntrap_domains = ["spamtrap.example"]\n')
    monkeypatch.setenv("AUPGUARD_CONFIG", str(cfg))
    assert is_trap("a@spamtrap.example") and not is_trap("a@example.com")


def test_is_trap():
    assert is_trap("trap1@honey.example", TRAPS) and is_trap(" <TRAP1@honey.example>", TRAPS)
    assert is_trap("anything@pot.example", TRAPS)
    assert not is_trap("trap2@honey.example", TRAPS) and not is_trap("x@notpot.example", TRAPS)


def test_hits_raise_indicator_and_finding(sqlite_store):
    with sqlite_store.session() as s:
        record_trap_hit(s, "trap1@honey.example", "acme", T0, "arf", offender="192.0.2.5", settings=TRAPS)
        record_trap_hit(s, "x@pot.example", "acme", T0 + timedelta(hours=2), "spamcop", settings=TRAPS)
        record_trap_hit(s, "y@pot.example", None, T0, "arf", settings=TRAPS)   # unattributed: kept, no indicator
    with sqlite_store.session() as s:
        [ind] = indicators(s, "acme")
        assert (ind.indicator, ind.count, ind.first_at, ind.last_at) == (
            "purchased_list", 2, T0, T0 + timedelta(hours=2))
        assert len(hits(s)) == 3 and len(hits(s, "acme")) == 2
        [incident] = list_incidents(s, clause_id="mail.purchased-lists")
        assert incident.client_id == "acme" and incident.observations == 2 and incident.peak == 2.0
        with pytest.raises(InputError, match="not a configured spam trap"):
            record_trap_hit(s, "real@person.example", "acme", T0, "arf", settings=TRAPS)
