"""MRT variants beyond the BIRD table dump: BGP4MP updates (AS4 and 2-byte with AS4_PATH,
IPv6 via MP_REACH/MP_UNREACH), TABLE_DUMP_V2 add-path, TABLE_DUMP v1; bgpdump as oracle."""

from __future__ import annotations

import ipaddress
import shutil
import struct
import subprocess

import pytest

from aupguard.routing.mrt import read_mrt
from aupguard.routing.rib import Rib
from aupguard.routing.synth import _attr, encode_attributes, mrt_record, peer_index

PEER, LOCAL = "192.0.2.9", "192.0.2.1"


def _nlri(prefixes: list[str], path_id: int | None = None) -> bytes:
    out = b""
    for p in prefixes:
        net = ipaddress.ip_network(p)
        nb = (net.prefixlen + 7) // 8
        if path_id is not None:
            out += struct.pack(">I", path_id)
        out += bytes([net.prefixlen]) + net.network_address.packed[:nb]
    return out


def _as_path(path: list[int], as4: bool) -> bytes:
    fmt = "I" if as4 else "H"
    return _attr(2, struct.pack(">BB", 2, len(path)) + struct.pack(f">{len(path)}{fmt}", *path))


def bgp4mp(update_body: bytes, as4: bool = True, addpath: bool = False) -> bytes:
    msg = b"\xff" * 16 + struct.pack(">HB", 19 + len(update_body), 2) + update_body
    aw = "I" if as4 else "H"
    head = struct.pack(f">{aw}{aw}HH", 64500, 65000, 0, 1)
    head += ipaddress.ip_address(PEER).packed + ipaddress.ip_address(LOCAL).packed
    subtype = {(True, False): 4, (False, False): 1, (True, True): 9, (False, True): 8}[(as4, addpath)]
    return mrt_record(16, subtype, head + msg)


def update(withdrawn: bytes = b"", attrs: bytes = b"", nlri: bytes = b"") -> bytes:
    return struct.pack(">H", len(withdrawn)) + withdrawn + struct.pack(">H", len(attrs)) + attrs + nlri


def mp_reach(prefixes: list[str], next_hop: str) -> bytes:
    nh = ipaddress.ip_address(next_hop).packed
    return _attr(14, struct.pack(">HBB", 2, 1, len(nh)) + nh + b"\x00" + _nlri(prefixes), flags=0x80)


def mp_unreach(prefixes: list[str]) -> bytes:
    return _attr(15, struct.pack(">HB", 2, 1) + _nlri(prefixes), flags=0x80)


ORIGIN = _attr(1, b"\x00")


def _updates_file(tmp_path):
    recs = [
        # AS4 session: announce two IPv4 prefixes with communities
        bgp4mp(update(attrs=ORIGIN + _as_path([64500, 4200000001], True) + _attr(3, bytes([192, 0, 2, 9]))
                      + _attr(8, struct.pack(">I", (65535 << 16) | 666), flags=0xC0),
                      nlri=_nlri(["203.0.113.0/24", "198.51.100.0/24"]))),
        # then withdraw one of them
        bgp4mp(update(withdrawn=_nlri(["198.51.100.0/24"]))),
        # 2-byte session: AS_TRANS in AS_PATH, the real 4-byte ASN in AS4_PATH
        bgp4mp(update(attrs=ORIGIN + _as_path([64500, 23456], False) + _attr(3, bytes([192, 0, 2, 9]))
                      + _attr(17, struct.pack(">BBII", 2, 2, 64500, 4200000002), flags=0xC0),
                      nlri=_nlri(["192.0.2.128/25"])), as4=False),
        # IPv6 over MP_REACH, then one of two withdrawn over MP_UNREACH
        bgp4mp(update(attrs=ORIGIN + _as_path([64500, 6939], True)
                      + mp_reach(["2001:db8:1::/48", "2001:db8:2::/48"], "2001:db8::9"))),
        bgp4mp(update(attrs=mp_unreach(["2001:db8:2::/48"]))),
    ]
    path = tmp_path / "updates.mrt"
    path.write_bytes(b"".join(recs))
    return path


def test_bgp4mp_updates_replayed(tmp_path):
    res = read_mrt(_updates_file(tmp_path))
    assert res.fatal is None and res.error_count == 0 and res.records == 5
    rib = Rib.from_mrt(res)
    assert len(rib) == 3
    r = rib.lookup("203.0.113.1")
    assert r["as_path"] == [64500, 4200000001] and r["communities"] == ["65535:666"] and r["peer"] == PEER
    assert rib.lookup("198.51.100.1") is None  # withdrawn
    assert rib.lookup("192.0.2.200")["as_path"] == [64500, 4200000002]  # AS4_PATH merged
    assert rib.lookup("2001:db8:1::1")["next_hop"] == "2001:db8::9"
    assert rib.lookup("2001:db8:2::1") is None


def test_bgp4mp_addpath(tmp_path):
    body = update(attrs=ORIGIN + _as_path([64500, 64501], True) + _attr(3, bytes([192, 0, 2, 9])),
                  nlri=_nlri(["203.0.113.0/24"], path_id=1))
    body2 = update(attrs=ORIGIN + _as_path([64500, 64502, 64503], True) + _attr(3, bytes([192, 0, 2, 9])),
                   nlri=_nlri(["203.0.113.0/24"], path_id=2))
    gone = update(withdrawn=_nlri(["203.0.113.0/24"], path_id=1))
    path = tmp_path / "ap.mrt"
    path.write_bytes(bgp4mp(body, addpath=True) + bgp4mp(body2, addpath=True) + bgp4mp(gone, addpath=True))
    rib = Rib.from_mrt(read_mrt(path))
    # path 1 (shorter) was withdrawn: path 2 remains
    assert rib.lookup("203.0.113.5")["as_path"] == [64500, 64502, 64503]


def test_table_dump_v2_addpath_picks_shortest(tmp_path):
    a_long = encode_attributes(4, [64500, 64501, 64502], [], "192.0.2.1")
    a_short = encode_attributes(4, [64500, 64509], ["65000:1"], "192.0.2.1")
    body = struct.pack(">IB", 0, 24) + bytes([203, 0, 113]) + struct.pack(">H", 2)
    for pid, attrs in ((1, a_long), (2, a_short)):
        body += struct.pack(">HII", 0, 1790000000, pid) + struct.pack(">H", len(attrs)) + attrs
    path = tmp_path / "tdv2ap.mrt"
    path.write_bytes(peer_index() + mrt_record(13, 8, body))
    rib = Rib.from_mrt(read_mrt(path))
    assert rib.lookup("203.0.113.1")["as_path"] == [64500, 64509]


def test_table_dump_v1(tmp_path):
    attrs = ORIGIN + _as_path([64500, 64510], False) + _attr(3, bytes([192, 0, 2, 9]))
    body = struct.pack(">HH", 0, 0) + bytes([10, 20, 0, 0]) + struct.pack(">BBI", 16, 1, 1790000000)
    body += ipaddress.ip_address(PEER).packed + struct.pack(">HH", 64500, len(attrs)) + attrs
    path = tmp_path / "v1.mrt"
    path.write_bytes(mrt_record(12, 1, body))
    rib = Rib.from_mrt(read_mrt(path))
    assert rib.lookup("10.20.3.4")["as_path"] == [64500, 64510]


@pytest.mark.skipif(shutil.which("bgpdump") is None, reason="bgpdump not installed (Debian bgpdump)")
def test_bgp4mp_agrees_with_bgpdump(tmp_path):
    path = _updates_file(tmp_path)
    out = subprocess.run(["bgpdump", "-m", str(path)], capture_output=True, text=True, timeout=30).stdout
    announced = {}
    for line in out.splitlines():
        f = line.split("|")
        if f[2] == "A":
            announced[f[5]] = f[6]
        elif f[2] == "W":
            announced.pop(f[5], None)
    rib = Rib.from_mrt(read_mrt(path))
    ours = {rib.route(i)["prefix"]: rib.route(i)["as_path_text"] for i in range(len(rib))}
    assert ours == announced
