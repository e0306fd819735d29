"""An MRT dump made by a real BGP implementation (BIRD 2, fed by ExaBGP on loopback)
loads, and lookups match bgpdump's reading of the same file."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess

import pytest

from aupguard.routing.config import Neighbour
from aupguard.routing.mrt import read_mrt
from aupguard.routing.rib import Rib
from aupguard.routing.speaker import BgpSpeaker

from .bgp_lab import Bird, free_port, speaker_settings, wait_for

FEEDER_AS = 4200000001  # a 4-byte ASN


def _routes() -> list[tuple[str, str, str]]:
    """(prefix, as-path text for ExaBGP, extra attributes); nested on purpose."""
    routes = [
        ("10.0.0.0/8", f"{FEEDER_AS} 3356 15169", "community [65535:666 65000:1]"),
        ("10.1.0.0/16", f"{FEEDER_AS} 174 4200000002", "community [65000:2]"),
        ("10.1.2.0/24", f"{FEEDER_AS} 1299 64512", ""),
        ("10.1.2.128/25", f"{FEEDER_AS} 1299 64513", "community [64512:7]"),
        ("10.1.2.200/32", f"{FEEDER_AS} 6939", ""),
        ("198.51.100.0/24", f"[ {FEEDER_AS} 2914 ] ( 64600 64601 )", ""),  # ends in an AS_SET
        ("2001:db8::/32", f"{FEEDER_AS} 6939", "community [65000:6]"),
        ("2001:db8:1::/48", f"{FEEDER_AS} 6939 4200000003", ""),
        ("2001:db8:1:2::/64", f"{FEEDER_AS} 3356 64514", ""),
        ("2001:db8:1:2::1/128", f"{FEEDER_AS} 64515", "community [65535:666]"),
        ("2a00:1450::/29", f"{FEEDER_AS} 15169", ""),
    ]
    for i in range(20):
        routes.append((f"100.{64 + i}.{i * 3}.0/24", f"{FEEDER_AS} {64600 + i} {4200000100 + i}",
                       f"community [{65000 + i}:{i}]"))
    for i in range(8):
        routes.append((f"2001:db8:{0x100 + i:x}::/48", f"{FEEDER_AS} {4200000200 + i}", ""))
    return routes


@pytest.fixture(scope="module")
def bird_dump(tmp_path_factory):
    if shutil.which("bgpdump") is None:
        pytest.skip("bgpdump not installed (Debian package bgpdump)")
    work = tmp_path_factory.mktemp("bird")
    bird_port, exa_port = free_port(), free_port("127.0.0.2")
    bird = Bird(work, bird_port, "127.0.0.2", exa_port, FEEDER_AS).start()
    settings = speaker_settings(work / "exa", "127.0.0.2", exa_port, FEEDER_AS,
                                [Neighbour(address="127.0.0.1", peer_as=65000, port=bird_port)])
    speaker = BgpSpeaker(settings)
    try:
        speaker.start()
        assert speaker.wait_ready(20), "ExaBGP API process did not connect"
        routes = _routes()
        for prefix, path, extra in routes:
            nh = "127.0.0.2" if ":" not in prefix else "2001:db8::2"
            aspath = path if path.startswith("[") else f"[ {path} ]"
            speaker.announce(f"route {prefix} next-hop {nh} as-path {aspath} {extra}".strip())
        got = wait_for(lambda: bird.route_count() >= len(routes), 30, 0.2)
        assert got, f"BIRD learnt {bird.route_count()} of {len(routes)} routes"
        dump = work / "bird.mrt"
        out = bird.cli(f'mrt dump table "master*" to "{dump}"')
        assert wait_for(lambda: dump.exists() and dump.stat().st_size > 0, 10), out
        # the dump is written asynchronously: wait until its size settles
        size = -1
        while dump.stat().st_size != size:
            size = dump.stat().st_size
            wait_for(lambda: False, 0.3)
    finally:
        speaker.stop()
        bird.stop()
    text = subprocess.run(["bgpdump", "-m", str(dump)], capture_output=True, text=True,
                          timeout=30).stdout
    return dump, [line.split("|") for line in text.splitlines() if line.startswith("TABLE_DUMP")], routes


def test_bird_dump_loads_like_bgpdump(bird_dump):
    dump, oracle, routes = bird_dump
    result = read_mrt(dump)
    assert result.fatal is None and result.error_count == 0
    rib = Rib.from_mrt(result, str(dump))
    assert len(oracle) == len(routes)
    assert len(rib) == len(oracle)
    for f in oracle:
        prefix, path, next_hop, communities = f[5], f[6], f[8], f[11]
        net = ipaddress.ip_network(prefix)
        # an address inside this prefix but outside any more-specific one
        probe = net.broadcast_address if net.prefixlen < net.max_prefixlen else net.network_address
        if prefix == "10.1.2.128/25":
            probe = ipaddress.ip_address("10.1.2.129")
        if prefix == "2001:db8:1:2::/64":
            probe = ipaddress.ip_address("2001:db8:1:2::2")
        hits = [ipaddress.ip_network(o[5]) for o in oracle if probe in ipaddress.ip_network(o[5])]
        expected = max(hits, key=lambda n: n.prefixlen)
        route = rib.lookup(str(probe))
        assert route is not None, prefix
        assert route["prefix"] == str(expected), (probe, route)
        if expected == net:
            assert route["as_path_text"] == path
            assert route["next_hop"] == next_hop
            std = [c for c in route["communities"] if c.count(":") == 1]
            assert sorted(std) == sorted(communities.split())


def test_bird_dump_as4_and_as_set(bird_dump):
    dump, _, _ = bird_dump
    rib = Rib.from_mrt(read_mrt(dump))
    r = rib.lookup("10.1.2.200")
    assert r["prefix"] == "10.1.2.200/32" and r["as_path"] == [FEEDER_AS, 6939] and r["origin_as"] == 6939
    r = rib.lookup("198.51.100.7")
    assert r["as_path"] == [FEEDER_AS, 2914, 64600, 64601]
    assert r["origin_as"] == 0  # ambiguous origin: the path ends in a 2-member AS_SET
    assert "{64600,64601}" in r["as_path_text"]
    r = rib.lookup("2001:db8:1:2::1")
    assert r["prefix"] == "2001:db8:1:2::1/128" and "65535:666" in r["communities"]
    assert rib.lookup("192.0.2.1") is None


def test_bird_dump_truncated_keeps_earlier_records(bird_dump, tmp_path):
    dump, oracle, _ = bird_dump
    data = dump.read_bytes()
    cut = tmp_path / "cut.mrt"
    cut.write_bytes(data[: len(data) - 7])
    result = read_mrt(cut)
    assert result.fatal is not None
    assert "truncated" in result.fatal.message
    # the fault is at the start of the last record, and every earlier record was kept
    assert 0 < result.fatal.offset < len(data) - 7
    assert len(result.routes) == len(oracle) - 1
