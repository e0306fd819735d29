"""Every rule on constructed flows: right offender, victim, client, clause and figures."""

from __future__ import annotations

import pytest

from aupguard.detect.detector import LiveDetector
from aupguard.incidents import list_incidents
from aupguard.store.db import Store
from tests.detect import flowgen as g
from tests.detect.conftest import detect_settings, populate

STEP_MS = 2000


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rules")
    store = Store(f"sqlite:///{tmp / 'state.db'}")
    store.migrate()
    populate(store, tmp)
    detector = LiveDetector(detect_settings(tmp), store)
    detector.replay(g.scenario(1), STEP_MS)
    with store.session() as session:
        rows = [r.as_dict() for r in list_incidents(session)]
    yield detector, rows
    store.dispose()


def _identity(row: dict) -> tuple:
    return row["rule"], row["client_id"], row["victim"], row["metrics"].get("port"), row["clause_id"]


def test_every_attack_found_once_and_nothing_else(replayed):
    _, rows = replayed
    found = sorted(_identity(r) for r in rows)
    expected = sorted((rule, client, victim, port, clause)
                      for rule, client, _o, victim, port, clause, *_ in g.EXPECTED)
    assert found == expected
    # One incident per attack: an ongoing attack grows its incident.
    assert len({r["key"] for r in rows}) == len(rows) == len(g.EXPECTED)


@pytest.mark.parametrize("expected", g.EXPECTED, ids=[e[0] for e in g.EXPECTED])
def test_offender_figures_and_evidence(replayed, expected):
    _, rows = replayed
    rule, client, offender, victim, _port, clause, metric, value, tolerance = expected
    (row,) = [r for r in rows if r["rule"] == rule]
    assert row["client_id"] == client and row["clause_id"] == clause
    if offender is not None:
        assert row["offender"] == offender
    else:
        assert row["offender"]  # a top source is always named
    measured = row["metrics"]["measured"][metric]
    assert measured == pytest.approx(value, rel=tolerance, abs=0 if tolerance else 1e-9)
    thresholds = row["metrics"]["thresholds"]
    assert set(thresholds) and all(isinstance(v, float) for v in thresholds.values())
    if metric in thresholds:
        assert measured >= thresholds[metric]
    assert row["source"] == "flow" and row["status"] == "active"
    assert row["evidence"], "sample flows are kept as evidence"
    for flow in row["evidence"]:
        if victim and rule not in ("smurf", "spoofing", "c2_contact"):
            assert victim in (flow["dst"], flow["src"])
        if offender and rule not in ("smurf",):
            assert offender in (flow["src"], flow["dst"])


def test_flood_incident_grows_with_first_and_last_seen(replayed):
    _, rows = replayed
    (syn,) = [r for r in rows if r["rule"] == "syn_flood_in"]
    assert syn["observations"] >= 3
    assert int(syn["first_seen"].timestamp() * 1000) == g.T0 + 10_000
    # The attack's last flow ends at +12.999 s; ordinary flows to the host may follow.
    assert g.T0 + 12_999 <= int(syn["last_seen"].timestamp() * 1000) < g.T0 + 18_000
    assert syn["metrics"]["role"] == "victim"
    (out,) = [r for r in rows if r["rule"] == "udp_flood_out"]
    assert out["metrics"]["role"] == "offender"
    assert out["metrics"]["measured"]["mbps"] == pytest.approx(384, rel=0.01)


def test_scans_name_sample_victims(replayed):
    _, rows = replayed
    (scan,) = [r for r in rows if r["rule"] == "horizontal_scan"]
    sample = scan["metrics"]["victims_sample"]
    assert len(sample) == 5 and all(v.startswith("45.") for v in sample)
    assert sample == sorted({f["dst"] for f in scan["evidence"]})


def test_c2_incident_names_the_feed(replayed):
    _, rows = replayed
    (c2,) = [r for r in rows if r["rule"] == "c2_contact"]
    assert c2["metrics"]["feed"].startswith("test-c2")


def test_spoofing_counts_bogons(replayed):
    _, rows = replayed
    (spoof,) = [r for r in rows if r["rule"] == "spoofing"]
    assert spoof["metrics"]["measured"]["bogon_flows"] == 5
    assert spoof["metrics"]["measured"]["sources"] == 26  # 25 random outside + 10.1.2.3


def test_normal_traffic_opens_no_incident(sqlite_store, tmp_path):
    populate(sqlite_store, tmp_path)
    detector = LiveDetector(detect_settings(tmp_path), sqlite_store)
    detector.replay(g.normal(7, seconds=60, per_s=80), 2000)
    assert detector.engine.rows_in == 60 * 80 * 2
    with sqlite_store.session() as session:
        assert list_incidents(session) == []


def test_quiet_incident_ends_after_hold(store, tmp_path):
    """On SQLite and PostgreSQL: the flood incident ends once quiet for hold_s."""
    populate(store, tmp_path)
    detector = LiveDetector(detect_settings(tmp_path, hold_s=10, rules=["syn_flood_in"]), store)
    detector.replay(g.syn_flood_in(3, g.T0), STEP_MS)
    with store.session() as session:
        (row,) = list_incidents(session)
        assert row.status == "active"
    detector.replay(g.normal(4, g.T0 + 30_000, seconds=5), STEP_MS)
    with store.session() as session:
        (row,) = list_incidents(session)
        assert row.status == "ended"
    # A new attack on the same victim opens a new incident.
    detector.replay(g.syn_flood_in(5, g.T0 + 40_000), STEP_MS)
    with store.session() as session:
        rows = list_incidents(session)
    assert [r.status for r in rows] == ["active", "ended"]
