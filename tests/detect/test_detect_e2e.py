"""Ground truth end to end: seeded pcap -> softflowd (NetFlow v9) -> live collector -> incidents."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from aupguard.detect.detector import LiveDetector
from aupguard.flows.collector import Collector
from aupguard.incidents import list_incidents
from tests.detect import pcapgen
from tests.detect.conftest import detect_settings, populate

SOFTFLOWD = shutil.which("softflowd") or "/usr/sbin/softflowd"
pytestmark = pytest.mark.skipif(not shutil.which("softflowd") and not
                                __import__("os").path.exists(SOFTFLOWD),
                                reason="Debian's softflowd is not installed (scripts/install adds it)")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    from aupguard.store.db import Store

    tmp = tmp_path_factory.mktemp("e2e")
    store = Store(f"sqlite:///{tmp / 'state.db'}")
    store.migrate()
    populate(store, tmp)
    settings = detect_settings(tmp, thresholds=pcapgen.E2E_THRESHOLDS, client_interfaces={})
    settings.flows = settings.flows.model_copy(update={
        "listen": ["127.0.0.1"], "netflow_port": free_udp_port(), "sflow_port": 0,
        "metrics_port": 0, "flush_seconds": 0.5, "batch_wait_ms": 50})
    pcap = tmp / "traffic.pcap"
    packets = pcapgen.build(pcap, time.time() - pcapgen.SECONDS - 5)
    detector = LiveDetector(settings, store)
    collector = Collector(settings, store)
    collector.add_listener(detector.process)
    collector.start()
    try:
        port = collector.ports[0][1]
        run = subprocess.run([SOFTFLOWD, "-r", str(pcap), "-n", f"127.0.0.1:{port}", "-v", "9",
                              "-a", "-m", "200000"], capture_output=True, text=True, timeout=120,
                             check=False)
        assert run.returncode == 0, run.stderr
        assert collector.wait_idle(timeout=60)
    finally:
        collector.stop()
    detector.tick()
    with store.session() as session:
        rows = [r.as_dict() for r in list_incidents(session)]
    yield {"rows": rows, "packets": packets, "stats": collector.stats(), "detector": detector,
           "settings": settings}
    store.dispose()


def test_flows_reached_the_detector(e2e):
    assert e2e["packets"] > 30_000
    assert e2e["detector"].engine.rows_in == e2e["stats"]["flows_out"] > 2000


def test_every_attack_found_with_the_right_parties(e2e):
    rows = e2e["rows"]
    found = {r["rule"]: r for r in rows}
    assert sorted(found) == sorted(t.rule for t in pcapgen.TRUTH)
    assert len(rows) == len(pcapgen.TRUTH)          # nothing else: ordinary traffic is quiet
    for truth in pcapgen.TRUTH:
        row = found[truth.rule]
        assert (row["client_id"], row["victim"], row["clause_id"]) == \
            (truth.client, truth.victim, truth.clause), truth.rule
        if truth.offender is not None:
            assert row["offender"] == truth.offender, truth.rule
        assert row["evidence"], truth.rule


def test_figures_match_the_generated_traffic(e2e):
    found = {r["rule"]: r["metrics"]["measured"] for r in e2e["rows"]}
    for rule in ("syn_flood_in", "udp_flood_out", "icmp_flood_in"):
        assert found[rule]["pps"] == pytest.approx(pcapgen.FLOOD_PPS, rel=0.1), rule
        assert found[rule]["share"] == pytest.approx(1.0, abs=0.02)
    # Reflection and reflector take the first 3/4 and 1/2 of the flood's packet times:
    # the same rate over a shorter span.
    assert found["reflection_victim"]["pps"] == pytest.approx(pcapgen.FLOOD_PPS, rel=0.1)
    assert found["reflection_victim"]["avg_bytes"] == pytest.approx(600, rel=0.05)
    assert found["reflection_reflector"]["pps"] == pytest.approx(pcapgen.FLOOD_PPS, rel=0.1)
    assert found["reflection_reflector"]["victim_share"] == 1.0
    assert found["horizontal_scan"]["hosts"] == 40
    assert found["vertical_scan"]["ports"] == 30
    assert found["distributed_scan"] == {"sources": 30.0, "hosts": 90.0}
    assert found["bogon_source"]["sources"] == 20
    assert found["spam_fanout"]["hosts"] == 40
    assert found["mail_bombing"]["sessions"] == 120
    assert found["brute_force"]["sessions"] == 30 and found["brute_force"]["per_host"] == 30
    assert found["c2_contact"]["flows"] == 6   # 3 sessions, both directions
