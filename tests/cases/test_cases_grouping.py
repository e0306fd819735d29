"""Grouping incidents into cases per client x clause within the window; merge and split."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aupguard.cases import service as cases
from aupguard.errors import InputError
from aupguard.incidents.model import IncidentRow
from aupguard.store.audit import verify

from .conftest import T0, add_incident


def test_grouping_per_client_and_clause_within_window(registry, settings):
    store = registry
    a = add_incident(store, clause="security.flood", client="c1", at=T0)
    b = add_incident(store, clause="security.flood", client="c1", at=T0 + timedelta(hours=10))
    c = add_incident(store, clause="security.scan", client="c1", at=T0 + timedelta(hours=1))
    d = add_incident(store, clause="security.flood", client="c2", at=T0)
    # 72 h window: 4 days after the last flood is a new case.
    e = add_incident(store, clause="security.flood", client="c1", at=T0 + timedelta(days=4))
    with store.session() as s:
        s.add(IncidentRow(source="flow", rule="x", clause_id="security.flood", key="nobody",
                          client_id=None, first_seen=T0, last_seen=T0, metrics={}, evidence=[],
                          created_at=T0))
    with store.session() as s:
        touched = cases.ingest_incidents(s, settings)
    assert len(touched) == 4
    with store.session() as s:
        by_incidents = {tuple(c.incident_ids): c for c in cases.list_cases(s)}
        assert set(by_incidents) == {(a, b), (c,), (d,), (e,)}
        flood = by_incidents[(a, b)]
        assert (flood.client_id, flood.clause_id, flood.status) == ("c1", "security.flood", "open")
        assert flood.first_seen == T0
        assert flood.last_seen == T0 + timedelta(hours=10, minutes=5)
        assert flood.priority == "high"
        assert flood.next_step == "notice"
        # The unattributed incident stays for review, untouched.
        assert s.query(IncidentRow).filter_by(key="nobody").one().case_id is None
        # Ingest is idempotent: nothing new, nothing touched.
        assert cases.ingest_incidents(s, settings) == []
        kinds = [t.kind for t in cases.timeline(s, flood.id)]
        assert kinds == ["open", "incident", "incident"]
        assert len(cases.case_evidence(s, settings, flood.id)) == 2  # one snapshot per incident
        assert verify(s).ok


def test_window_setting_changes_grouping(lite_registry, settings):
    registry = lite_registry
    settings.cases.grouping_window_hours = 1
    add_incident(registry, client="c1", at=T0)
    add_incident(registry, client="c1", at=T0 + timedelta(hours=3))
    with registry.session() as s:
        assert len(cases.ingest_incidents(s, settings)) == 2


def test_merge_and_split(registry, settings):
    store = registry
    a = add_incident(store, clause="security.flood", client="c1", at=T0)
    b = add_incident(store, clause="security.scan", client="c1", at=T0)
    c = add_incident(store, clause="security.flood", client="c2", at=T0)
    with store.session() as s:
        touched = {tuple(x.incident_ids): x.id for x in cases.ingest_incidents(s, settings)}
    flood, scan, other = touched[(a,)], touched[(b,)], touched[(c,)]
    with store.session() as s:
        with pytest.raises(InputError, match="only cases of one client"):
            cases.merge(s, flood, [other], "alice")
    with store.session() as s:
        merged = cases.merge(s, flood, [scan], "alice")
        assert merged.incident_ids == [a, b]
        gone = cases.get_case(s, scan)
        assert (gone.status, gone.merged_into) == ("closed", flood)
        assert len(cases.case_evidence(s, settings, flood)) == 2
    with store.session() as s:
        with pytest.raises(InputError, match="some, not all"):
            cases.split(s, flood, [a, b], "alice")
        with pytest.raises(InputError, match="not in case"):
            cases.split(s, flood, [c], "alice")
        new = cases.split(s, flood, [b], "alice")
        assert new.incident_ids == [b]
        assert new.clause_id == "security.scan"
        assert cases.get_case(s, flood).incident_ids == [a]
        assert [e.incident_id for e in cases.case_evidence(s, settings, new.id)] == [b]
        assert "split" in [t.kind for t in cases.timeline(s, flood)]
        assert verify(s).ok


def test_status_transitions_and_fields(lite_registry, settings):
    registry = lite_registry
    add_incident(registry, client="c1")
    with registry.session() as s:
        (case,) = cases.ingest_incidents(s, settings)
        with pytest.raises(InputError, match="can move to"):
            cases.set_status(s, case.id, "suspended", "bob")
        with pytest.raises(InputError, match="unknown status"):
            cases.set_status(s, case.id, "bogus", "bob")
        with pytest.raises(InputError, match="unknown priority"):
            cases.set_priority(s, case.id, "asap", "bob")
        cases.assign(s, case.id, "bob", "alice")
        cases.set_priority(s, case.id, "urgent", "alice")
        cases.add_note(s, case.id, "looks like a compromised CMS", "bob")
        done = cases.set_status(s, case.id, "resolved", "bob", note="client fixed it")
        assert done.status == "resolved" and done.closed_at is not None and done.due_at is None
        again = cases.set_status(s, case.id, "open", "bob")
        assert again.closed_at is None
        got = cases.get_case(s, case.id)
        assert (got.owner, got.priority) == ("bob", "urgent")
        texts = [t.text for t in cases.timeline(s, case.id)]
        assert "looks like a compromised CMS" in texts and "client fixed it" in texts
        assert cases.list_cases(s, status="open", client_id="c1")[0].id == case.id
        assert cases.list_cases(s, status="open", client_id="c2") == []
