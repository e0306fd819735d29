"""Seeded generator of ordinary IPv4 traffic as a pcap, and the flows it contains.

Other tests (decoders, detection, bench) may import it::

    from tests.flows.traffic import write_pcap, expected_flows
    packets = write_pcap(path, seed=7, conversations=200)
    flows = expected_flows(packets)   # {(src, dst, sport, dport, proto): FlowTotals}

Traffic: TCP sessions (handshake, a few data segments each way, FIN), UDP DNS
queries with answers, one-way UDP (syslog-like) and ICMP echo request/reply.
Every conversation uses its own 5-tuple so an exporter's flow cache maps one
conversation direction to exactly one flow record. Packets are built with dpkt
(much faster than scapy for thousands of packets).

Real exporters and a capture oracle for end-to-end tests and the bench:
:func:`run_softflowd` (Debian's softflowd reading a pcap, ``-a`` so flow times
follow the capture), :class:`Capture` (dumpcap on ``lo``) and
:func:`tshark_flows` (the records tshark decodes from such a capture).
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dpkt

T0 = datetime(2026, 11, 2, 10, 0, 0, tzinfo=UTC).timestamp()
CLIENT_NET = "10.20.{}.{}"
SERVERS = ["192.0.2.10", "192.0.2.53", "198.51.100.25", "203.0.113.80", "198.51.100.7"]


@dataclass(frozen=True)
class Packet:
    ts: float
    src: str
    dst: str
    sport: int
    dport: int
    proto: int
    ip_len: int
    frame: bytes

    @property
    def key(self) -> tuple[str, str, int, int, int]:
        return (self.src, self.dst, self.sport, self.dport, self.proto)


@dataclass
class FlowTotals:
    packets: int
    bytes: int
    first: float
    last: float


def _ip_packet(src: str, dst: str, proto: int, payload: dpkt.Packet, ident: int) -> dpkt.ip.IP:
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=proto,
                    ttl=64, id=ident & 0xFFFF, data=payload)
    ip.len = len(ip)  # dpkt fills len and checksum when packed
    return ip


def _frame(ip: dpkt.ip.IP) -> bytes:
    eth = dpkt.ethernet.Ethernet(src=b"\x02\x00\x00\x00\x00\x01", dst=b"\x02\x00\x00\x00\x00\x02",
                                 type=dpkt.ethernet.ETH_TYPE_IP, data=ip)
    return bytes(eth)


def generate(seed: int = 7, conversations: int = 200, t0: float = T0,
             span: float = 120.0) -> list[Packet]:
    """Packets of ``conversations`` conversations starting within ``span`` s of ``t0``."""
    rng = random.Random(seed)
    packets: list[Packet] = []
    ident = 0
    used_ports: set[tuple[str, int]] = set()

    def add(ts: float, src: str, dst: str, proto: int, payload: dpkt.Packet,
            sport: int, dport: int) -> None:
        nonlocal ident
        ident += 1
        ip = _ip_packet(src, dst, proto, payload, ident)
        frame = _frame(ip)
        packets.append(Packet(ts, src, dst, sport, dport, proto, len(bytes(ip)), frame))

    for _ in range(conversations):
        client = CLIENT_NET.format(rng.randrange(0, 4), rng.randrange(1, 255))
        while True:
            cport = rng.randrange(20000, 60000)
            if (client, cport) not in used_ports:
                used_ports.add((client, cport))
                break
        ts = t0 + rng.uniform(0, span)
        kind = rng.choices(["tcp", "dns", "oneway", "icmp"], weights=[6, 2, 1, 1])[0]
        if kind == "tcp":
            server = rng.choice(SERVERS)
            sport = rng.choice([80, 443, 25, 22, 8080])
            seq_c, seq_s = rng.randrange(1 << 31), rng.randrange(1 << 31)

            def tcp(flags: int, data: bytes, frm: str, cport: int = cport, sport: int = sport,
                    seq_c: int = seq_c, seq_s: int = seq_s) -> dpkt.tcp.TCP:
                if frm == "c":
                    return dpkt.tcp.TCP(sport=cport, dport=sport, seq=seq_c, ack=seq_s,
                                        flags=flags, win=65535, data=data)
                return dpkt.tcp.TCP(sport=sport, dport=cport, seq=seq_s, ack=seq_c,
                                    flags=flags, win=65535, data=data)

            steps = [("c", dpkt.tcp.TH_SYN, b""), ("s", dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK, b""),
                     ("c", dpkt.tcp.TH_ACK, b"")]
            for _ in range(rng.randrange(1, 6)):
                steps.append(("c", dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH,
                              rng.randbytes(rng.randrange(20, 600))))
                steps.append(("s", dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH,
                              rng.randbytes(rng.randrange(100, 1400))))
            steps += [("c", dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK, b""),
                      ("s", dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK, b""), ("c", dpkt.tcp.TH_ACK, b"")]
            for frm, flags, data in steps:
                ts += rng.uniform(0.001, 0.05)
                if frm == "c":
                    add(ts, client, server, 6, tcp(flags, data, "c"), cport, sport)
                else:
                    add(ts, server, client, 6, tcp(flags, data, "s"), sport, cport)
        elif kind == "dns":
            server = "192.0.2.53"
            for _ in range(rng.randrange(1, 4)):
                q = dpkt.udp.UDP(sport=cport, dport=53, data=rng.randbytes(rng.randrange(30, 60)))
                add(ts, client, server, 17, q, cport, 53)
                ts += rng.uniform(0.001, 0.03)
                a = dpkt.udp.UDP(sport=53, dport=cport, data=rng.randbytes(rng.randrange(60, 400)))
                add(ts, server, client, 17, a, 53, cport)
                ts += rng.uniform(0.01, 0.3)
        elif kind == "oneway":
            server = "198.51.100.7"
            for _ in range(rng.randrange(1, 8)):
                u = dpkt.udp.UDP(sport=cport, dport=514, data=rng.randbytes(rng.randrange(40, 300)))
                add(ts, client, server, 17, u, cport, 514)
                ts += rng.uniform(0.05, 1.0)
        else:
            server = rng.choice(SERVERS)
            # ICMP has no ports: exporters put type/code in the destination port
            # (type << 8 | code); the echo id stays inside the payload.
            for i in range(rng.randrange(1, 4)):
                echo = dpkt.icmp.ICMP.Echo(id=cport & 0xFFFF, seq=i, data=rng.randbytes(56))
                req = dpkt.icmp.ICMP(type=8, code=0, data=echo)
                add(ts, client, server, 1, req, 0, 8 << 8)
                ts += rng.uniform(0.001, 0.02)
                rep = dpkt.icmp.ICMP(type=0, code=0, data=echo)
                add(ts, server, client, 1, rep, 0, 0)
                ts += rng.uniform(0.5, 1.0)
    packets.sort(key=lambda p: p.ts)
    return packets


def write_pcap(path: Path, seed: int = 7, conversations: int = 200, t0: float = T0,
               span: float = 120.0) -> list[Packet]:
    """Write the generated packets as an Ethernet pcap; returns them."""
    packets = generate(seed, conversations, t0, span)
    with open(path, "wb") as fh:
        writer = dpkt.pcap.Writer(fh, linktype=dpkt.pcap.DLT_EN10MB)
        for p in packets:
            writer.writepkt(p.frame, ts=p.ts)
    return packets


def expected_flows(packets: list[Packet]) -> dict[tuple[str, str, int, int, int], FlowTotals]:
    """One flow per direction of each conversation: packets, IP bytes, first/last time.

    ICMP flows are keyed without the echo id, as exporters see them: ICMP from one
    host to another with the same type/code is one flow.
    """
    flows: dict[tuple[str, str, int, int, int], FlowTotals] = {}
    for p in packets:
        f = flows.get(p.key)
        if f is None:
            flows[p.key] = FlowTotals(1, p.ip_len, p.ts, p.ts)
        else:
            f.packets += 1
            f.bytes += p.ip_len
            f.last = max(f.last, p.ts)
    return flows


def flows_table(rows: list[dict], enriched: bool = False):
    """A FLOW_SCHEMA (or ENRICHED_SCHEMA) Arrow table from a few dicts, for store tests.

    Each row needs start (datetime or epoch ms); addresses as text; other fields
    default to plausible values (end = start, packets 1, bytes 100, sampling 1).
    """
    import pyarrow as pa

    from aupguard.flows.schema import ENRICHED_SCHEMA, FLOW_SCHEMA
    from aupguard.netaddr import address_int, parse_address

    schema = ENRICHED_SCHEMA if enriched else FLOW_SCHEMA

    def addr(text: str | None) -> bytes | None:
        return None if text is None else address_int(parse_address(text)).to_bytes(16, "big")

    defaults = {"src_addr": "10.0.0.1", "dst_addr": "192.0.2.1", "src_port": 40000,
                "dst_port": 80, "proto": 6, "tcp_flags": 0, "packets": 1, "bytes": 100,
                "sampling_rate": 1, "exporter": "127.0.0.1", "obs_domain": 0, "in_if": 0,
                "out_if": 0, "src_as": 0, "dst_as": 0, "src_mask": 0, "dst_mask": 0,
                "next_hop": None, "direction": -1, "flow_version": 9}
    cols: dict[str, list] = {f.name: [] for f in schema}
    for row in rows:
        full = {**defaults, **row}
        full.setdefault("end", full["start"])
        full.setdefault("packets_raw", full["packets"])
        full.setdefault("bytes_raw", full["bytes"])
        for f in schema:
            value = full.get(f.name)
            if f.name in ("src_addr", "dst_addr", "exporter", "next_hop"):
                value = addr(value)
            cols[f.name].append(value)
    return pa.Table.from_pydict(cols, schema=schema)


# -- real exporters and the tshark oracle ------------------------------------------
FlowKey = tuple[str, str, int, int, int]


def _skip(reason: str) -> None:
    import pytest  # only under pytest; the bench catches the Skipped exception

    pytest.skip(reason)


def need(tool: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists()
                                  else None)
    if not path:
        _skip(f"{tool} is not installed (scripts/install installs it from Debian)")
    return path


def run_softflowd(pcap: Path, port: int, version: int,
                  timeout: float = 120) -> subprocess.CompletedProcess:
    """Export the flows of ``pcap`` to 127.0.0.1:port; returns when softflowd exits (EOF).

    softflowd keeps only the first 15 characters of the ``-r`` path (it shares the
    interface-name buffer), and with a control-socket path longer than ~11
    characters it blocks in accept() instead of reading the file (softflowd 1.1.0,
    measured here). So it runs in the pcap's directory with short relative names.
    """
    exe = need("softflowd")
    short = f"in{port}.pcap"
    link = pcap.parent / short
    if not link.exists():
        link.symlink_to(pcap.name)
    return subprocess.run(
        [exe, "-r", short, "-n", f"127.0.0.1:{port}", "-v", str(version), "-a", "-d",
         "-p", f"{port}.p", "-c", f"{port}.c"],
        cwd=pcap.parent, capture_output=True, text=True, timeout=timeout, check=True)


class Capture:
    """dumpcap -i lo for UDP to one port; start() returns once dumpcap is capturing."""

    def __init__(self, port: int, path: Path):
        self.port, self.path = port, path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 15) -> Capture:
        exe = need("dumpcap")
        self.proc = subprocess.Popen(
            [exe, "-i", "lo", "-f", f"udp dst port {self.port}", "-w", str(self.path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout
        # dumpcap prints "Capturing on 'Loopback: lo'" once the filter is installed.
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if "Capturing on" in line:
                # dumpcap says so slightly before its filter sees packets (it missed
                # a whole softflowd burst here without this pause).
                time.sleep(1.0)
                return self
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        _skip("dumpcap could not capture on lo (needs CAP_NET_RAW)")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            time.sleep(0.3)  # let the last datagrams reach the capture file
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _first(flow: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in flow:
            return flow[name]
    return None


def tshark_flows(capture: Path, port: int) -> list[dict[str, Any]]:
    """Flow records tshark decodes from a capture of exports to ``port`` (all versions)."""
    exe = need("tshark")
    out = subprocess.run([exe, "-r", str(capture), "-d", f"udp.port=={port},cflow", "-T", "json"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    flows: list[dict[str, Any]] = []
    for packet in json.loads(out or "[]"):
        cflow = packet["_source"]["layers"].get("cflow")
        if not cflow:
            continue
        for name, flowset in cflow.items():
            if not name.startswith(("FlowSet", "Set ", "pdu")):
                continue
            records = [v for k, v in flowset.items() if k.startswith("Flow ")] \
                if not name.startswith("pdu") else [flowset]
            for rec in records:
                if "cflow.srcaddr" not in rec and "cflow.srcaddr_v6" not in rec:
                    continue
                flows.append({
                    "src": _first(rec, "cflow.srcaddr", "cflow.srcaddr_v6"),
                    "dst": _first(rec, "cflow.dstaddr", "cflow.dstaddr_v6"),
                    "sport": int(_first(rec, "cflow.srcport") or 0),
                    "dport": int(_first(rec, "cflow.dstport", "cflow.icmp_type_code_ipv4") or "0", 0),
                    "proto": int(rec["cflow.protocol"]),
                    "packets": int(_first(rec, "cflow.packets", "cflow.packets64")),
                    "bytes": int(_first(rec, "cflow.octets", "cflow.octets64")),
                })
    return flows
