"""Sample traffic for the demo: a pcap of ordinary traffic with attacks in it.

The pcap is replayed by a real exporter (Debian's softflowd) into the live
collector, so the demo exercises the same path as a router. Packets of one
kind share a layout, so each kind is built as one numpy array of frames
(template + per-packet fields) rather than packet by packet.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ETH = bytes.fromhex("020000000002" "020000000001" "0800")


@dataclass(frozen=True)
class Attack:
    kind: str
    offender: str
    victim: str
    clause: str


def _ips(values) -> np.ndarray:
    return np.array([int(ipaddress.IPv4Address(v)) for v in values], dtype=np.uint32) \
        if isinstance(values, (list, tuple)) else np.asarray(values, dtype=np.uint32)


def _checksum(headers: np.ndarray) -> np.ndarray:
    """IPv4 header checksums for an (n, 20) uint8 array, vectorised."""
    words = headers.reshape(len(headers), 10, 2).astype(np.uint32)
    total = (words[:, :, 0] << 8 | words[:, :, 1]).sum(axis=1)
    while (total >> 16).any():
        total = (total & 0xFFFF) + (total >> 16)
    return (~total & 0xFFFF).astype(np.uint16)


def frames(src, dst, sport, dport, proto: int, *, flags: int = 0x02, payload: int = 0) -> np.ndarray:
    """(n, L) Ethernet+IPv4+TCP/UDP/ICMP frames; scalars broadcast."""
    src, dst = _ips(src), _ips(dst)
    n = max(len(src), len(dst))
    src, dst = np.broadcast_to(src, n), np.broadcast_to(dst, n)
    sport = np.broadcast_to(np.asarray(sport, dtype=np.uint16), n)
    dport = np.broadcast_to(np.asarray(dport, dtype=np.uint16), n)
    l4 = {6: 20, 17: 8, 1: 8}[proto]
    total = 20 + l4 + payload
    out = np.zeros((n, 14 + total), dtype=np.uint8)
    out[:, :14] = np.frombuffer(ETH, dtype=np.uint8)
    ip = out[:, 14:34]
    ip[:, 0] = 0x45
    ip[:, 2:4] = np.frombuffer(struct.pack(">H", total), dtype=np.uint8)
    ip[:, 8] = 64
    ip[:, 9] = proto
    ip[:, 12:16] = src.astype(">u4").view(np.uint8).reshape(n, 4)
    ip[:, 16:20] = dst.astype(">u4").view(np.uint8).reshape(n, 4)
    ip[:, 10:12] = _checksum(ip.copy()).astype(">u2").view(np.uint8).reshape(n, 2)
    l4v = out[:, 34:34 + l4]
    if proto in (6, 17):
        l4v[:, 0:2] = sport.astype(">u2").view(np.uint8).reshape(n, 2)
        l4v[:, 2:4] = dport.astype(">u2").view(np.uint8).reshape(n, 2)
    if proto == 6:
        l4v[:, 12] = 0x50
        l4v[:, 13] = flags
        l4v[:, 14:16] = (0xFF, 0xFF)
    elif proto == 17:
        l4v[:, 4:6] = np.frombuffer(struct.pack(">H", 8 + payload), dtype=np.uint8)
    else:
        l4v[:, 0] = 8  # echo request
    return out


class PcapBuilder:
    """Collects (time, frame) groups and writes one time-ordered pcap."""

    def __init__(self) -> None:
        self.groups: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, times: np.ndarray, data: np.ndarray) -> None:
        self.groups.append((np.broadcast_to(np.asarray(times, dtype=np.float64), len(data)), data))

    def write(self, path: Path) -> int:
        times, blobs = [], []
        for t, data in self.groups:
            n, length = data.shape
            head = np.zeros(n, dtype=[("sec", "<u4"), ("usec", "<u4"), ("incl", "<u4"), ("orig", "<u4")])
            head["sec"] = t.astype(np.uint32)
            head["usec"] = ((t - np.floor(t)) * 1e6).astype(np.uint32)
            head["incl"] = head["orig"] = length
            times.append(t)
            blobs.append(np.concatenate([head.view(np.uint8).reshape(n, 16), data], axis=1))
        if not blobs:
            flat, order, lengths = np.zeros(0, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64)
        else:
            flat = np.concatenate([b.ravel() for b in blobs])
            lengths = np.concatenate([np.full(len(b), b.shape[1], np.int64) for b in blobs])
            order = np.argsort(np.concatenate(times), kind="stable")
        # Records differ in length across groups, so gather them in time order by slicing
        # one flat buffer (one slice per packet: cheap next to building the frames).
        buf = flat.tobytes()
        starts = (np.cumsum(lengths) - lengths)[order].tolist()
        ends = (np.cumsum(lengths))[order].tolist()
        with open(path, "wb") as fh:
            fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            fh.write(b"".join(buf[a:b] for a, b in zip(starts, ends)))
        return len(order)


def demo_pcap(path: Path, t0: float, seed: int = 2026) -> list[Attack]:
    """Write the demo capture starting at unix time t0; returns the attacks in it."""
    rng = np.random.default_rng(seed)
    pcap = PcapBuilder()
    outside = lambda n: (int(ipaddress.IPv4Address("11.0.0.0")) + rng.integers(1, 1 << 20, n)).astype(np.uint32)  # noqa: E731

    # Ordinary traffic: web sessions between clients and the Internet, 20 s long.
    for i in range(300):
        client = f"198.51.100.{int(rng.choice([18, 20, 70, 140, 141, 150]))}"
        remote = outside(1)
        sport = int(rng.integers(20000, 60000))
        start = t0 + float(rng.uniform(0, 20))
        k = int(rng.integers(3, 12))
        pcap.add(start + np.arange(k) * 0.05, frames([client] * k, remote, sport, 443, 6, flags=0x18, payload=200))
        pcap.add(start + 0.01 + np.arange(k) * 0.05, frames(remote.repeat(k), [client] * k, 443, sport, 6, flags=0x18, payload=1200))

    attacks = []
    # SYN flood toward an ACME host: 30,000 pps for 3 s from random sources.
    n = 90_000
    pcap.add(t0 + 5 + np.sort(rng.uniform(0, 3, n)),
             frames(outside(n), ["198.51.100.140"] * n, rng.integers(1024, 65535, n), 80, 6, flags=0x02))
    attacks.append(Attack("syn_flood", "(many)", "198.51.100.140", "security.flood"))
    # DNS reflection toward an ACME host: big UDP answers from port 53.
    n = 24_000
    pcap.add(t0 + 9 + np.sort(rng.uniform(0, 2, n)),
             frames(outside(n), ["198.51.100.150"] * n, 53, rng.integers(1024, 65535, n), 17, payload=600))
    attacks.append(Attack("reflection", "(many)", "198.51.100.150", "security.flood"))
    # Horizontal scan of telnet from a Mailer host.
    n = 120
    pcap.add(t0 + 2 + np.arange(n) * 0.02, frames(["203.0.113.40"] * n, outside(n), 40000, 23, 6, flags=0x02))
    attacks.append(Attack("horizontal_scan", "203.0.113.40", "(many)", "security.scan"))
    # SSH brute force from the shop toward one server: 60 short sessions.
    # Established (ACKed) sessions: a login attempt, not a mere SYN probe.
    n = 60
    for k in range(3):
        pcap.add(t0 + 3 + np.arange(n) * 0.1 + k * 0.01,
                 frames(["198.51.100.20"] * n, ["45.1.2.3"] * n, 30000 + np.arange(n), 22, 6,
                        flags=0x18, payload=40))
    attacks.append(Attack("brute_force", "198.51.100.20", "45.1.2.3", "security.cracking"))
    # Spam fan-out: a Mailer host that is not its registered mail server talks SMTP to 80 servers.
    n = 80
    pcap.add(t0 + 4 + np.arange(n) * 0.05, frames(["203.0.113.44"] * n, outside(n), 41000 + np.arange(n), 25, 6, flags=0x18, payload=600))
    attacks.append(Attack("spam_fanout", "203.0.113.44", "(many)", "mail.spam"))
    pcap.write(path)
    return attacks
