"""Offline import: export datagrams from a pcap/pcapng capture into the flow store.

A user who captured what a router sent (``tcpdump -w``) replays it through the
same decoder as the live collector. The capture is read with dpkt; link types
Ethernet (with 802.1Q tags), Linux cooked (SLL, SLL2), raw IP and BSD loopback
are understood. UDP datagrams to the given ports (by default NetFlow/IPFIX/sFlow
ports, or any port with ``ports=None``) are fed in batches; the exporter is the
packet's source address and the receive time the capture time. IPv4 fragments
are reassembled (large IPFIX datagrams on a 1500-byte path arrive fragmented).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import dpkt

from aupguard.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_PORTS = frozenset({2055, 2056, 4739, 6343, 9995, 9996})
BATCH = 2048
MAX_FRAGMENT_SETS = 4096  # bound the reassembly table (hostile captures)


@dataclass
class ImportStats:
    packets: int = 0
    datagrams: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    flows: int = 0

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


def _open_reader(fh: BinaryIO, path: Path) -> Any:
    head = fh.read(4)
    fh.seek(0)
    try:
        if head == b"\x0a\x0d\x0d\x0a":
            return dpkt.pcapng.Reader(fh)
        return dpkt.pcap.Reader(fh)
    except (ValueError, dpkt.dpkt.Error) as exc:
        raise InputError(f"{path} is not a pcap or pcapng capture ({exc}); "
                         "write captures with tcpdump -w or dumpcap") from None


def _ip_layer(linktype: int, buf: bytes) -> dpkt.Packet | None:
    if linktype == dpkt.pcap.DLT_EN10MB:
        eth = dpkt.ethernet.Ethernet(buf)  # dpkt strips 802.1Q/QinQ tags itself
        return eth.data if isinstance(eth.data, (dpkt.ip.IP, dpkt.ip6.IP6)) else None
    if linktype == dpkt.pcap.DLT_LINUX_SLL:
        sll = dpkt.sll.SLL(buf)
        return sll.data if isinstance(sll.data, (dpkt.ip.IP, dpkt.ip6.IP6)) else None
    if linktype == 276:  # LINUX_SLL2: 20-byte header, protocol in the first 2 bytes
        proto = int.from_bytes(buf[0:2], "big")
        body = buf[20:]
        return dpkt.ip.IP(body) if proto == 0x0800 else dpkt.ip6.IP6(body) if proto == 0x86DD else None
    if linktype in (dpkt.pcap.DLT_RAW, 101, 228, 229):
        version = buf[0] >> 4 if buf else 0
        return dpkt.ip.IP(buf) if version == 4 else dpkt.ip6.IP6(buf) if version == 6 else None
    if linktype in (dpkt.pcap.DLT_NULL, dpkt.pcap.DLT_LOOP):
        version = buf[4] >> 4 if len(buf) > 4 else 0
        body = buf[4:]
        return dpkt.ip.IP(body) if version == 4 else dpkt.ip6.IP6(body) if version == 6 else None
    return None


class _Reassembler:
    """IPv4 fragment reassembly, bounded (hand-written: dpkt has none)."""

    def __init__(self) -> None:
        self.sets: dict[tuple[bytes, bytes, int, int], dict[int, bytes]] = {}
        self.last: dict[tuple[bytes, bytes, int, int], int] = {}
        self.evicted = 0

    def add(self, ip: dpkt.ip.IP) -> bytes | None:
        """The whole IP payload once every fragment is in, else None."""
        key = (ip.src, ip.dst, ip.id, ip.p)
        offset = ip.offset * 8  # the header field counts 8-byte units
        if key not in self.sets and len(self.sets) >= MAX_FRAGMENT_SETS:
            oldest = next(iter(self.sets))  # drop the oldest incomplete datagram
            self.evicted += len(self.sets.pop(oldest))
            self.last.pop(oldest, None)
        parts = self.sets.setdefault(key, {})
        parts[offset] = bytes(ip.data) if not isinstance(ip.data, bytes) else ip.data
        if not ip.mf:
            self.last[key] = offset + len(parts[offset])
        total = self.last.get(key)
        if total is None:
            return None
        data, pos = b"", 0
        for off in sorted(parts):
            if off != pos:
                return None
            data += parts[off]
            pos += len(parts[off])
        if pos != total:
            return None
        del self.sets[key]
        del self.last[key]
        return data


def datagrams(path: Path, ports: frozenset[int] | None = DEFAULT_PORTS,
              stats: ImportStats | None = None,
              progress: Callable[[int], None] | None = None
              ) -> Iterator[tuple[bytes, str, int]]:
    """(UDP payload, exporter address, capture time in ms) of each export datagram."""
    stats = stats or ImportStats()
    frags = _Reassembler()
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        reader = _open_reader(fh, path)
        linktype = reader.datalink()
        last_pos = 0
        try:
            for ts, buf in reader:
                stats.packets += 1
                if progress is not None and stats.packets % 1024 == 0:
                    pos = fh.tell()
                    progress(pos - last_pos)
                    last_pos = pos
                try:
                    ip = _ip_layer(linktype, buf)
                except (dpkt.dpkt.Error, ValueError, IndexError):
                    stats.skip("truncated or malformed frame")
                    continue
                if ip is None:
                    stats.skip("not IP")
                    continue
                if isinstance(ip, dpkt.ip.IP):
                    exporter = socket.inet_ntop(socket.AF_INET, ip.src)
                    if ip.mf or ip.offset:
                        if ip.p != dpkt.ip.IP_PROTO_UDP:
                            stats.skip("not UDP")
                            continue
                        whole = frags.add(ip)
                        if whole is None:
                            continue
                        try:
                            udp = dpkt.udp.UDP(whole)
                        except dpkt.dpkt.Error:
                            stats.skip("truncated or malformed frame")
                            continue
                    else:
                        udp = ip.data
                else:
                    exporter = socket.inet_ntop(socket.AF_INET6, ip.src)
                    udp = ip.data
                if not isinstance(udp, dpkt.udp.UDP):
                    stats.skip("not UDP")
                    continue
                if ports is not None and udp.dport not in ports:
                    stats.skip("other UDP port")
                    continue
                payload = bytes(udp.data)
                if udp.ulen > 8 + len(payload):
                    # Cut by the capture's snaplen or a truncated file: decoding half a
                    # datagram would only produce errors.
                    stats.skip("datagram truncated by the capture")
                    continue
                if udp.ulen >= 8:
                    payload = payload[:udp.ulen - 8]  # drop link-layer padding
                if not payload:
                    stats.skip("empty UDP payload")
                    continue
                stats.datagrams += 1
                yield payload, exporter, int(ts * 1000)
        except (dpkt.dpkt.NeedData, dpkt.dpkt.UnpackError, ValueError) as exc:
            # A capture cut short (tcpdump killed) ends early; what came before counts.
            stats.skip("capture truncated")
            log.warning("%s ends with a truncated record (%s); imported what came before",
                        path, exc)
        if progress is not None:
            progress(fh.tell() - last_pos if not fh.closed else 0)
    held = sum(len(parts) for parts in frags.sets.values()) + frags.evicted
    if held:
        stats.skipped["IP fragments never completed"] = held


def import_pcap(path: Path, settings: Any, writer: Any = None,
                ports: frozenset[int] | None = DEFAULT_PORTS,
                progress: Callable[[int], None] | None = None,
                enricher: Callable[[Any], Any] | None = None) -> tuple[ImportStats, Any]:
    """Decode every export datagram of ``path`` into the flow store.

    Returns (import counters, the decoder's DecodeStats). Flows are flushed before returning.
    """
    import pyarrow as pa

    from aupguard.flows.decode import Decoder
    from aupguard.flows.store import FlowWriter

    cfg = settings.flows
    decoder = Decoder(default_sampling=cfg.default_sampling,
                      sampling_overrides=dict(cfg.sampling_overrides),
                      max_pending=cfg.max_pending)
    writer = writer or FlowWriter.from_settings(settings)
    stats = ImportStats()
    batch: list[tuple[bytes, str, int]] = []

    def feed() -> None:
        out = [b for b in decoder.feed_many(batch) if b.num_rows]
        batch.clear()
        if out:
            table = pa.Table.from_batches(out)
            if enricher is not None:
                table = enricher(table)
            stats.flows += table.num_rows
            writer.add(table)

    for item in datagrams(Path(path), ports, stats, progress):
        batch.append(item)
        if len(batch) >= BATCH:
            feed()
    if batch:
        feed()
    writer.flush()
    return stats, decoder.stats
