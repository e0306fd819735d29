"""Live BGP: a second ExaBGP announces and withdraws to aupguard's speaker on loopback;
lookups follow within a second."""

from __future__ import annotations

import time

import pytest

from aupguard.routing.config import Neighbour
from aupguard.routing.speaker import BgpSpeaker, parse_as_path

from .bgp_lab import free_port, speaker_settings, wait_for

OURS, THEIRS = 65000, 4200000010
FAMILIES = ["ipv4 unicast", "ipv6 unicast", "ipv4 flow"]


@pytest.fixture
def peers(tmp_path):
    our_port, their_port = free_port("127.0.0.1"), free_port("127.0.0.3")
    ours = BgpSpeaker(speaker_settings(
        tmp_path / "ours", "127.0.0.1", our_port, OURS,
        [Neighbour(address="127.0.0.3", peer_as=THEIRS, passive=True, families=FAMILIES)]))
    theirs = BgpSpeaker(speaker_settings(
        tmp_path / "theirs", "127.0.0.3", their_port, THEIRS,
        [Neighbour(address="127.0.0.1", peer_as=OURS, port=our_port, families=FAMILIES)]))
    try:
        ours.start()
        theirs.start()
        assert ours.wait_ready(20) and theirs.wait_ready(20)
        yield ours, theirs
    finally:
        theirs.stop()
        ours.stop()


def _time_until(predicate, timeout: float) -> float | None:
    start = time.monotonic()
    if wait_for(predicate, timeout, 0.01):
        return time.monotonic() - start
    return None


def test_announce_and_withdraw_reach_lookups(peers):
    ours, theirs = peers
    # first route: also waits for the session to come up
    theirs.announce(f"route 203.0.113.0/24 next-hop 127.0.0.3 as-path [ {THEIRS} 3356 ]")
    assert wait_for(lambda: ours.lookup("203.0.113.9"), 45, 0.05), "session never delivered a route"
    r = ours.lookup("203.0.113.9")
    assert r["prefix"] == "203.0.113.0/24" and r["as_path"] == [THEIRS, 3356] and r["origin_as"] == 3356
    assert r["next_hop"] == "127.0.0.3" and r["peer"] == "127.0.0.3"

    # a more specific blackhole route: lookups follow within a second
    theirs.announce(f"route 203.0.113.9/32 next-hop 127.0.0.3 as-path [ {THEIRS} 64999 ] "
                    "community [65535:666]")
    took = _time_until(lambda: (ours.lookup("203.0.113.9") or {}).get("prefix") == "203.0.113.9/32", 1.0)
    assert took is not None and took < 1.0
    assert ours.lookup("203.0.113.9")["communities"] == ["65535:666"]
    assert ours.lookup("203.0.113.10")["prefix"] == "203.0.113.0/24"

    theirs.announce(f"route 2001:db8:f00::/40 next-hop 2001:db8::3 as-path [ {THEIRS} 6939 ]")
    took = _time_until(lambda: ours.lookup("2001:db8:f00::1"), 1.0)
    assert took is not None
    assert ours.lookup("2001:db8:f00::1")["as_path"] == [THEIRS, 6939]

    theirs.withdraw("route 203.0.113.9/32 next-hop 127.0.0.3")
    took = _time_until(lambda: (ours.lookup("203.0.113.9") or {}).get("prefix") == "203.0.113.0/24", 1.0)
    assert took is not None and took < 1.0
    theirs.withdraw("route 2001:db8:f00::/40 next-hop 2001:db8::3")
    assert _time_until(lambda: ours.lookup("2001:db8:f00::1") is None, 1.0) is not None
    assert len(ours.rib) == 1
    assert ours.rib.errors == 0

    # FlowSpec through the same API (what the detection stage's mitigation sends)
    rule = "flow route { match { destination 192.0.2.1/32; protocol udp; source-port =123; } then { discard; } }"
    theirs.announce(rule)
    assert wait_for(lambda: ours.rib.flows, 5), "FlowSpec rule not received"
    (peer, text), = ours.rib.flows.keys()
    assert peer == "127.0.0.3" and "192.0.2.1/32" in text and "123" in text
    theirs.withdraw(rule)
    assert wait_for(lambda: not ours.rib.flows, 5)


def test_as_path_json_forms():
    seq_set = {"0": {"element": "as-sequence", "value": [1, 2]},
               "1": {"element": "as-set", "value": [4, 3]},
               "2": {"element": "confed-sequence", "value": [64512]}}
    path, text = parse_as_path(seq_set)
    assert path == [1, 2, 3, 4]
    assert text == "1 2 {4,3} (64512)"
    assert parse_as_path([7, 8]) == ([7, 8], "7 8")
