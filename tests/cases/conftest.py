"""Fixtures of the cases tests: a registry with a reseller chain, incident makers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from aupguard.incidents import Finding, report
from aupguard.registry import Client, add_client

T0 = datetime(2026, 10, 5, 12, 0, tzinfo=timezone.utc)


def populate(store):
    """Three levels: wholesale reseller -> reseller -> end client, plus an unrelated client."""
    with store.session() as s:
        add_client(s, Client(id="wholesale", name="Wholesale Ltd",
                             abuse_email="abuse@wholesale.example",
                             escalation_email="legal@wholesale.example"))
        add_client(s, Client(id="reseller", name="Reseller BV", parent_id="wholesale",
                             abuse_email="abuse@reseller.example"))
        add_client(s, Client(id="c1", name="Client One", parent_id="reseller",
                             abuse_email="noc@client1.example",
                             escalation_email="ceo@client1.example"))
        add_client(s, Client(id="c2", name="Client Two", emails=["ops@client2.example"]))
    return store


@pytest.fixture
def registry(store):
    """The sample registry on SQLite and on PostgreSQL (workflow tests)."""
    return populate(store)


@pytest.fixture
def lite_registry(sqlite_store):
    """The sample registry on SQLite only (content and format tests, kept fast)."""
    return populate(sqlite_store)


_serial = iter(range(1, 10**6))


def finding(clause="security.flood", client="c1", at=T0, minutes=5, source="flow", rule=None,
            evidence=None, summary=None, offender="192.0.2.10", key=None) -> Finding:
    n = next(_serial)
    return Finding(source=source, rule=rule or f"rule-{clause}", clause_id=clause,
                   key=key or f"{clause}:{client}:{n}", first_seen=at,
                   last_seen=at + timedelta(minutes=minutes), client_id=client, offender=offender,
                   victim="198.51.100.7", summary=summary or f"{clause} from {offender}",
                   evidence=evidence if evidence is not None else
                   [{"src": offender, "dst": "198.51.100.7", "dport": 80, "packets": 120000}])


def add_incident(store, **kw):
    with store.session() as s:
        return report(s, finding(**kw)).id
