"""A seeded pcap with ordinary traffic and every attack kind, for softflowd to export.

softflowd (-r) exports every flow when the file ends, so all floods sit in the
last seconds of the capture (the flood windows are 5 s); minute-long patterns
(scans, spam, brute force) are spread over the capture. Flood volumes are kept
small (a few thousand packets per second) and the test lowers the flood
thresholds to match, so the file stays a few MB and builds in about a second.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

import dpkt
import numpy as np

from tests.detect import flowgen as g

ETH_SRC, ETH_DST = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"
SYN, ACK, PSH, FIN, RST = dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK, dpkt.tcp.TH_PUSH, dpkt.tcp.TH_FIN, dpkt.tcp.TH_RST
SECONDS = 24
FLOOD_AT = 19.0        # floods run from here to FLOOD_AT + 2 s
FLOOD_PPS = 4000

#: Thresholds the end-to-end test configures (FastNetMon's defaults scaled to the file).
E2E_THRESHOLDS = {
    rule: {"pps": 2000.0, "flows_per_s": 1e9, "mbps": 1e6}
    for rule in ("syn_flood_in", "syn_flood_out", "udp_flood_in", "udp_flood_out",
                 "icmp_flood_in", "icmp_flood_out", "reflection_victim")
}


@dataclass(frozen=True)
class Truth:
    rule: str
    client: str
    offender: str | None   # None: many (spoofed) sources
    victim: str
    clause: str


TRUTH = [
    Truth("syn_flood_in", "acme", None, g.VICTIM, "security.flood"),
    Truth("udp_flood_out", "beta", g.BETA_HOST, "45.1.2.3", "security.flood"),
    Truth("icmp_flood_in", "acme", None, "198.51.100.12", "security.flood"),
    Truth("reflection_victim", "acme", None, "198.51.100.13", "security.flood"),
    Truth("reflection_reflector", "acme", g.DNS_SERVER, "45.9.9.9", "security.flood"),
    Truth("smurf", "acme", "198.51.100.255", "45.7.7.7", "security.flood"),
    Truth("horizontal_scan", "beta", g.BETA_HOST, "", "security.scan"),
    Truth("vertical_scan", "acme", "45.6.6.6", g.VICTIM, "security.scan"),
    Truth("distributed_scan", "acme", None, "", "security.scan"),
    Truth("bogon_source", "acme", None, "198.51.100.14", "security.forgery"),
    Truth("spam_fanout", "beta", g.SPAMMER, "", "mail.spam"),
    Truth("mail_bombing", "beta", g.BETA_HOST, "45.5.5.5", "security.flood"),
    Truth("brute_force", "acme", "45.4.4.4", g.VICTIM, "security.cracking"),
    Truth("c2_contact", "beta", g.BETA_HOST, g.C2_ADDRESS, "mail.malware"),
]


class PcapBuilder:
    def __init__(self, base: float, seed: int):
        self.base = base
        self.rng = np.random.default_rng(seed)
        self.packets: list[tuple[float, bytes]] = []

    def ip(self, t: float, src: str, dst: str, proto: int, payload, size: int = 0) -> None:
        packet = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=proto,
                            ttl=64, data=payload)
        body = bytes(payload)
        if size > len(body) + 20:
            pad = b"\x00" * (size - len(body) - 20)
            packet.data = body + pad
        packet.len = 20 + len(bytes(packet.data))
        frame = dpkt.ethernet.Ethernet(src=ETH_SRC, dst=ETH_DST, type=dpkt.ethernet.ETH_TYPE_IP,
                                       data=packet)
        self.packets.append((self.base + t, bytes(frame)))

    def tcp(self, t, src, dst, sport, dport, flags, size=0):
        self.ip(t, src, dst, 6, dpkt.tcp.TCP(sport=int(sport), dport=int(dport), flags=flags), size)

    def udp(self, t, src, dst, sport, dport, size=0):
        self.ip(t, src, dst, 17, dpkt.udp.UDP(sport=int(sport), dport=int(dport), data=b"x"), size)

    def icmp_echo(self, t, src, dst, size=84):
        echo = dpkt.icmp.ICMP(type=8, code=0, data=dpkt.icmp.ICMP.Echo(id=1, seq=1, data=b"ping"))
        self.ip(t, src, dst, 1, echo, size)

    def session(self, t, client, server, sport, dport, packets=6):
        """A complete TCP exchange (both directions carry ACKs)."""
        self.tcp(t, client, server, sport, dport, SYN)
        self.tcp(t + 0.01, server, client, dport, sport, SYN | ACK)
        for i in range(packets):
            self.tcp(t + 0.02 + i * 0.01, client, server, sport, dport, ACK | PSH, 400)
            self.tcp(t + 0.025 + i * 0.01, server, client, dport, sport, ACK, 1200)
        self.tcp(t + 0.1, client, server, sport, dport, FIN | ACK)

    def outside(self, net: str = "45.0.0.0") -> str:
        return str(ipaddress.IPv4Address(g.ip(net) + int(self.rng.integers(1, 2**24 - 1))))

    def write(self, path: Path) -> int:
        self.packets.sort(key=lambda p: p[0])
        with open(path, "wb") as fh:
            writer = dpkt.pcap.Writer(fh)
            for ts, frame in self.packets:
                writer.writepkt(frame, ts=ts)
        return len(self.packets)


def build(path: Path, base: float, seed: int = 7) -> int:
    b = PcapBuilder(base, seed)
    rng = b.rng
    acme = [f"198.51.100.{i}" for i in range(100, 140)]
    beta = [f"203.0.113.{i}" for i in range(100, 140)]
    servers = [b.outside() for _ in range(30)]
    # Ordinary traffic: web sessions and DNS lookups all along.
    for i in range(300):
        t = float(rng.uniform(0, SECONDS - 1))
        client = (acme + beta)[int(rng.integers(0, 80))]
        b.session(t, client, servers[int(rng.integers(0, 30))], 20000 + i, 443)
    for i in range(200):
        t = float(rng.uniform(0, SECONDS - 1))
        client = (acme + beta)[int(rng.integers(0, 80))]
        b.udp(t, client, servers[0], 30000 + i, 53, 70)
        b.udp(t + 0.02, servers[0], client, 53, 30000 + i, 180)
    # Floods, together in the last seconds.
    n = int(FLOOD_PPS * 2)
    ts = FLOOD_AT + np.sort(rng.uniform(0, 2, n))
    for t in ts:                                                    # SYN flood, spoofed
        b.tcp(t, b.outside("11.0.0.0"), g.VICTIM, rng.integers(1024, 65535), 80, SYN)
    for t in ts:                                                    # UDP flood from beta
        b.udp(t, g.BETA_HOST, "45.1.2.3", 40000, 9999, 500)
    for t in ts:                                                    # ICMP flood
        b.icmp_echo(t, b.outside("11.0.0.0"), "198.51.100.12")
    resolvers = [b.outside() for _ in range(50)]
    for i, t in enumerate(ts[: int(n * 0.75)]):                     # DNS reflection
        b.udp(t, resolvers[i % 50], "198.51.100.13", 53, 4444, 600)
    for t in ts[: n // 2]:                                          # acme's open resolver
        b.udp(t, g.DNS_SERVER, "45.9.9.9", 53, 5555, 500)
    for i in range(100):                                            # smurf
        b.icmp_echo(FLOOD_AT + i * 0.02, "45.7.7.7", "198.51.100.255")
    # Minute-long patterns spread over the capture.
    for i in range(40):                                             # horizontal scan, telnet
        b.tcp(1 + i * 0.3, g.BETA_HOST, b.outside(), 50000 + i, 23, SYN)
    for i in range(30):                                             # vertical scan
        b.tcp(2 + i * 0.2, "45.6.6.6", g.VICTIM, 55555, 1 + i * 7, SYN)
    for s in range(30):                                             # distributed scan
        src = b.outside("11.0.0.0")
        for h in range(3):
            b.tcp(3 + s * 0.2 + h * 0.01, src, f"198.51.100.{1 + s * 3 + h}", 41000, 3389, SYN)
    for i in range(20):                                             # bogon sources
        b.tcp(4 + i * 0.1, f"10.1.2.{i + 1}", "198.51.100.14", 1234, 80, SYN)
    for i in range(40):                                             # spam fan-out + mail server
        b.session(5 + i * 0.2, g.SPAMMER, b.outside(), 42000 + i, 25, 4)
        b.session(5 + i * 0.2, g.BETA_MAIL, b.outside(), 42000 + i, 25, 4)
    for i in range(120):                                            # mail bombing
        b.session(6 + i * 0.1, g.BETA_HOST, "45.5.5.5", 43000 + i, 25, 3)
    for i in range(30):                                             # ssh brute force
        b.session(7 + i * 0.3, "45.4.4.4", g.VICTIM, 44000 + i, 22, 5)
    for i in range(3):                                              # C2 beacons
        b.session(8 + i * 4, g.BETA_HOST, g.C2_ADDRESS, 45000 + i, 443, 2)
    return b.write(path)

