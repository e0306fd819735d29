"""Mitigation: a real BIRD 2 peer receives the RTBH route from ExaBGP and sees it withdrawn."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from aupguard.cli import app
from aupguard.detect import mitigate
from aupguard.detect.detector import LiveDetector
from aupguard.detect.exabgp import ExaBGPSpeaker, wait_for
from aupguard.detect.models import Mitigation
from aupguard.store.audit import AuditEntry, verify
from tests.detect import flowgen as g
from tests.detect.bgp_peer import BIRD_ADDRESS, BIRD_AS, SPEAKER_ADDRESS, SPEAKER_AS, BirdPeer
from tests.detect.conftest import detect_settings, populate

pytestmark = pytest.mark.skipif(not BirdPeer.available(), reason="BIRD 2 is not installed (apt-get install bird2)")


@pytest.fixture
def bird(tmp_path):
    peer = BirdPeer(tmp_path / "bird").start()
    yield peer
    peer.stop()


def mitigation_settings(tmp_path, bird: BirdPeer, **overrides):
    mitigation = {"enabled": True, "auto": True, "hold_s": 10, "next_hop": "127.0.0.66",
                  "peer_address": BIRD_ADDRESS, "peer_port": bird.port, "peer_as": BIRD_AS,
                  "local_address": SPEAKER_ADDRESS, "router_id": SPEAKER_ADDRESS,
                  "local_as": SPEAKER_AS, **overrides}
    return detect_settings(tmp_path, mitigation=mitigation, rules=["syn_flood_in"])


def audit_actions(store) -> list[str]:
    with store.session() as session:
        assert verify(session).ok
        entries = [e for e in session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()
                   if e.entity == "mitigation"]
        return [e.action for e in entries]


def test_blackhole_announced_then_withdrawn_after_hold(tmp_path, sqlite_store, bird):
    populate(sqlite_store, tmp_path)
    settings = mitigation_settings(tmp_path, bird)
    speaker = ExaBGPSpeaker(settings.detect.mitigation, tmp_path / "exabgp")
    try:
        detector = LiveDetector(settings, sqlite_store, speaker=speaker)
        detector.replay(g.syn_flood_in(1, g.T0), 1000)
        assert wait_for(bird.established, 30), bird.birdc("show", "protocols", "all")
        assert wait_for(lambda: f"{g.VICTIM}/32" in bird.routes(), 20)
        assert bird.routes()[f"{g.VICTIM}/32"] == ["65535,666"]   # RFC 7999 BLACKHOLE
        with sqlite_store.session() as session:
            (row,) = mitigate.list_mitigations(session)
            assert (row.status, row.prefix, row.kind) == ("announced", f"{g.VICTIM}/32", "blackhole")
        # Still under attack within the hold time: stays announced.
        detector.replay(g.normal(2, g.T0 + 6000, seconds=3), 1000)
        assert f"{g.VICTIM}/32" in bird.routes()
        # Quiet for longer than hold_s: withdrawn from the peer.
        detector.replay(g.normal(3, g.T0 + 20_000, seconds=2), 1000)
        assert wait_for(lambda: f"{g.VICTIM}/32" not in bird.routes(), 20)
        with sqlite_store.session() as session:
            (row,) = mitigate.list_mitigations(session)
            assert row.status == "withdrawn" and "quiet" in row.reason
        assert audit_actions(sqlite_store) == ["mitigation.propose", "mitigation.announce",
                                               "mitigation.withdraw"]
    finally:
        speaker.stop()


def test_manual_approval_and_allow_list(tmp_path, sqlite_store, bird):
    populate(sqlite_store, tmp_path)
    other = "198.51.100.11"
    settings = mitigation_settings(tmp_path, bird, auto=False, allow_list=[f"{other}/32"],
                                   hold_s=600)
    config = tmp_path / "aupguard.toml"
    config.write_text(f'data_dir = "{settings.data_dir}"\n[store]\nurl = "{sqlite_store.url}"\n')
    speaker = ExaBGPSpeaker(settings.detect.mitigation, tmp_path / "exabgp")
    try:
        detector = LiveDetector(settings, sqlite_store, speaker=speaker)
        import pyarrow as pa

        detector.replay(pa.concat_tables([g.syn_flood_in(1, g.T0),
                                          g.syn_flood_in(2, g.T0, victim=other)]).sort_by("end"), 1000)
        runner = CliRunner()
        listed = json.loads(runner.invoke(app, ["-c", str(config), "mitigations", "list", "--json"]).output)
        by_prefix = {m["prefix"]: m for m in listed}
        assert by_prefix[f"{other}/32"]["status"] == "rejected"          # allow-listed
        pending = by_prefix[f"{g.VICTIM}/32"]
        assert pending["status"] == "pending" and speaker.sent == []
        result = runner.invoke(app, ["-c", str(config), "mitigations", "approve", str(pending["id"])])
        assert result.exit_code == 0, result.output
        detector.tick(g.T0 + 4000)           # the running detector speaks BGP
        assert wait_for(lambda: f"{g.VICTIM}/32" in bird.routes(), 30)
        assert f"{other}/32" not in bird.routes()
        result = runner.invoke(app, ["-c", str(config), "mitigations", "withdraw", str(pending["id"]),
                                     "--reason", "customer asked"])
        assert result.exit_code == 0, result.output
        detector.tick(g.T0 + 5000)
        assert wait_for(lambda: f"{g.VICTIM}/32" not in bird.routes(), 20)
        with sqlite_store.session() as session:
            row = session.get(Mitigation, pending["id"])
            assert row.status == "withdrawn" and row.reason == "customer asked"
        assert audit_actions(sqlite_store) == [
            "mitigation.propose", "mitigation.propose", "mitigation.approve", "mitigation.announce",
            "mitigation.withdraw-request", "mitigation.withdraw"]
    finally:
        speaker.stop()


def test_flowspec_rule_text():
    from aupguard.detect.config import MitigationSettings
    from aupguard.detect.engine import Detection
    from aupguard.detect.rules import ALL_RULES

    det = Detection(rule=ALL_RULES["reflection_victim"], key="k", client="acme", role="victim",
                    offender="45.0.0.1", victim=g.VICTIM, port=None, first_ms=0, last_ms=0,
                    window_ms=(0, 0), metrics={}, thresholds={})
    kind, text = mitigate.route_text(MitigationSettings(mode="flowspec"), f"{g.VICTIM}/32", det)
    assert kind == "flowspec"
    assert text == f"flow route destination {g.VICTIM}/32 protocol udp discard"
    kind, text = mitigate.route_text(MitigationSettings(communities=["65535:666", "65000:9"]),
                                     f"{g.VICTIM}/32", det)
    assert text == f"route {g.VICTIM}/32 next-hop 192.0.2.1 community [65535:666 65000:9]"
