"""tshark as the decode oracle: run `tshark -T json` and pull out each flow record.

tshark's JSON repeats keys (one per occurrence of a field), so objects are read
as lists of pairs. Each returned flow is a dict field -> list of values plus the
header fields of its datagram (``_hdr``) and, for sFlow, its sample fields.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

DECODE_AS = [
    ("udp.port==9990", "cflow"),
    ("udp.port==9991", "cflow"),
    ("udp.port==9992", "cflow"),
    ("udp.port==8096", "cflow"),
    ("udp.port==2055", "cflow"),
    ("udp.port==4739", "cflow"),
    ("udp.port==6343", "sflow"),
]


def available() -> bool:
    return shutil.which("tshark") is not None


def run(pcap: Path, extra_ports: dict[int, str] | None = None) -> list[list]:
    args = ["tshark", "-r", str(pcap), "-T", "json"]
    decode = list(DECODE_AS) + [
        (f"udp.port=={p}", proto) for p, proto in (extra_ports or {}).items()
    ]
    for rule, proto in decode:
        args += ["-d", f"{rule},{proto}"]
    res = subprocess.run(args, capture_output=True, check=True, timeout=120)
    return json.loads(res.stdout, object_pairs_hook=lambda pairs: pairs)


def _get(pairs: list, key: str) -> list:
    return [v for k, v in pairs if k == key]


def _flat(pairs, into: dict) -> None:
    """Leaf fields of a tree (sub-trees are searched too), values listed in order."""
    for k, v in pairs:
        if isinstance(v, list) and v and isinstance(v[0], tuple):
            _flat(v, into)
        elif isinstance(v, list) and v == []:
            continue
        else:
            into.setdefault(k, []).append(v)


def cflow_flows(packets: list) -> list[dict]:
    """Every data/options record tshark decoded from NetFlow/IPFIX, in order."""
    flows = []
    for pkt in packets:
        layers = _get(_get(pkt, "_source")[0], "layers")[0]
        src = None
        for lay, key in (("ip", "ip.src"), ("ipv6", "ipv6.src")):
            for sub in _get(layers, lay):
                src = src or (_get(sub, key) or [None])[0]
        for cflow in _get(layers, "cflow"):
            hdr: dict = {}
            _flat([(k, v) for k, v in cflow if not re.match(r"(Flow)?Set \d+", k)], hdr)
            hdr = {k: v[0] for k, v in hdr.items()}
            hdr["_src"] = src
            for k, v in cflow:
                if k.startswith("pdu ") and isinstance(v, list):  # NetFlow v5 record
                    rec: dict = {}
                    _flat(v, rec)
                    rec["_hdr"] = hdr
                    rec["_set"] = 0
                    flows.append(rec)
                    continue
                m = re.match(r"(Flow)?Set \d+ \[id=(\d+)\]", k)
                if not m or not isinstance(v, list):
                    continue
                for fk, fv in v:
                    if fk.startswith("Flow ") and isinstance(fv, list):
                        rec: dict = {}
                        _flat(fv, rec)
                        rec["_hdr"] = hdr
                        rec["_set"] = int(m.group(2))
                        flows.append(rec)
    return flows


def sflow_flows(packets: list) -> list[dict]:
    """Every flow sample tshark decoded from sFlow, with its sampled header tree flattened."""
    flows = []
    for pkt in packets:
        layers = _get(_get(pkt, "_source")[0], "layers")[0]
        for sf in _get(layers, "sflow"):
            for k, v in sf:
                if k.startswith(("Flow sample", "Expanded flow sample")) and isinstance(v, list):
                    rec: dict = {}
                    _flat(v, rec)
                    rec["_expanded"] = k.startswith("Expanded")
                    flows.append(rec)
    return flows


def read_udp(pcap: Path) -> list[tuple[bytes, str, int, int]]:
    """UDP payloads of a capture: (payload, source address, time ms, destination port)."""
    import socket

    import dpkt

    out = []
    with open(pcap, "rb") as fh:
        reader = dpkt.pcap.Reader(fh)
        link = reader.datalink()
        for ts, frame in reader:
            if link == dpkt.pcap.DLT_EN10MB:
                ip = dpkt.ethernet.Ethernet(frame).data
            elif link == dpkt.pcap.DLT_LINUX_SLL:
                ip = dpkt.sll.SLL(frame).data
            elif link in (dpkt.pcap.DLT_RAW, 101):
                ip = dpkt.ip.IP(frame) if frame[0] >> 4 == 4 else dpkt.ip6.IP6(frame)
            else:
                ip = dpkt.loopback.Loopback(frame).data
            if isinstance(ip, dpkt.ip.IP):
                family = socket.AF_INET
            elif isinstance(ip, dpkt.ip6.IP6):
                family = socket.AF_INET6
            else:
                continue
            if not isinstance(ip.data, dpkt.udp.UDP):
                continue
            out.append(
                (
                    bytes(ip.data.data),
                    socket.inet_ntop(family, ip.src),
                    round(ts * 1000),
                    ip.data.dport,
                )
            )
    return out
