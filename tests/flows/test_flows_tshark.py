"""Every flow capture in ../shared/data/flows decodes exactly as tshark decodes it.

The oracle is Debian's tshark (run here, `-T json`). For each capture we feed
the UDP payloads to our decoder and compare the multiset of flow records field
by field: addresses, ports, protocol, TCP flags, raw packet/byte counters,
interfaces, start/end UTC ms and sampling rate (which tshark reads from the
options records or the sample, and we work out independently).
"""

from __future__ import annotations

import ipaddress
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aupguard.flows.decode import Decoder
from aupguard.netaddr import format_address
from tests.flows import test_flows_tshark_oracle as oracle

pytestmark = pytest.mark.skipif(
    not oracle.available(), reason="tshark not installed (apt-get install tshark)"
)

AK = "akvorado"
PM = "pmacct-test-automation"
# capture groups fed in order to one decoder (templates first where they sit in another file)
CFLOW_CASES = {
    "nfv5": [f"{AK}/nfv5.pcap"],
    "v9-template-data": [f"{AK}/template.pcap", f"{AK}/data.pcap"],
    "v9-options-sampler": [
        f"{AK}/options-template.pcap",
        f"{AK}/options-data.pcap",
        f"{AK}/template.pcap",
        f"{AK}/data.pcap",
    ],
    "ipfix-samplingrate": [f"{AK}/samplingrate-template.pcap", f"{AK}/samplingrate-data.pcap"],
    "ipfix-datalink": [f"{AK}/datalink-template.pcap", f"{AK}/datalink-data.pcap"],
    "ipfix-physicalinterfaces": [f"{AK}/physicalinterfaces.pcap"],
    "juniper-data-before-template": [f"{AK}/data+templates.pcap", f"{AK}/data+templates.pcap"],
    "pmacct-100-ipfix-cisco": [f"{PM}/100-IPFIXv10-CISCO/traffic-00.pcap"],
    "pmacct-101-v9-cisco": [f"{PM}/101-NFv9-CISCO-cust_primitives/traffic-00.pcap"],
    "pmacct-104-ipfix-v6-sampling": [
        f"{PM}/104-IPFIXv10-IPv6-CISCO-sampling_option/traffic-00.pcap"
    ],
    "pmacct-111-mixed-v9-ipfix": [f"{PM}/111-IPFIXv10-NFv9-IPv6-IPv4-mix_sources/traffic-01.pcap"],
    "pmacct-500-ipfix-srv6": [f"{PM}/500-IPFIXv10-BGP-CISCO-SRv6/traffic-00.pcap"],
}
SFLOW_CASES = {
    "sflow-raw-ipv4": [f"{AK}/data-sflow-raw-ipv4.pcap"],
    "sflow-expanded": [f"{AK}/data-sflow-expanded-sample.pcap"],
    "sflow-1140": [f"{AK}/data-1140.pcap"],
}


def _merge(shared: Path, files: list[str], tmp_path: Path) -> Path:
    if len(files) == 1:
        return shared / "flows" / files[0]
    out = tmp_path / "merged.pcap"
    subprocess.run(
        [
            "mergecap",
            "-a",
            "-F",
            "pcap",
            "-w",
            str(out),
            *(str(shared / "flows" / f) for f in files),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


def _decode(pcap: Path, one_by_one: bool = False):
    dec = Decoder()
    items = [(p, src, t) for p, src, t, _port in oracle.read_udp(pcap)]
    batches = []
    if one_by_one:
        for it in items:
            batches += dec.feed(*it)
    else:
        batches = dec.feed_many(items)
    rows = [r for b in batches for r in b.to_pylist()]
    return dec, rows


def _ms(text: str) -> int:
    """tshark absolute time 'Feb  9, 2023 14:22:23.123000000 UTC' to epoch ms."""
    main, frac = " ".join(text.split()).rsplit(" ", 1)[0].split(".")
    dt = datetime.strptime(main, "%b %d, %Y %H:%M:%S").replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1000 + int(frac[:3])


def _addr(text: str | None) -> str | None:
    return None if text is None else str(ipaddress.ip_address(text))


def _our_row(r: dict) -> tuple:
    ms = lambda d: int(d.timestamp() * 1000)
    return (
        format_address(r["src_addr"]),
        format_address(r["dst_addr"]),
        r["src_port"],
        r["dst_port"],
        r["proto"],
        r["tcp_flags"],
        r["packets_raw"],
        r["bytes_raw"],
        r["in_if"],
        r["out_if"],
        ms(r["start"]),
        ms(r["end"]),
        r["sampling_rate"],
    )


def _first(rec: dict, *keys: str, conv=int, default=None):
    for k in keys:
        if k in rec:
            return conv(rec[k][0])
    return default


def _tshark_cflow_rows(flows: list[dict]) -> list[tuple]:
    sampling: dict[tuple, int] = {}
    sys_init: dict[tuple, int] = {}
    rows = []
    addr_keys = ("cflow.srcaddr", "cflow.srcaddrv6", "cflow.dstaddr", "cflow.dstaddrv6")
    for rec in flows:
        h = rec["_hdr"]
        stream = (h["_src"], h.get("cflow.source_id", h.get("cflow.od_id")))
        frame = "cflow.data_link_frame_section" in rec  # IPFIX packet sampling (IE 315)
        if not frame and not any(k in rec for k in addr_keys):  # options data
            sid = _first(rec, "cflow.sampler_id", "cflow.selector_id")
            rate = _first(rec, "cflow.sampling_interval", "cflow.sampler_random_interval")
            if (
                rate is None
                and "cflow.sampling_packet_interval" in rec
                and "cflow.sampling_packet_space" in rec
            ):
                interval = int(rec["cflow.sampling_packet_interval"][0])
                rate = (interval + int(rec["cflow.sampling_packet_space"][0])) // interval
            if rate is None and "cflow.sampling_population" in rec:
                rate = int(rec["cflow.sampling_population"][0]) // int(
                    rec.get("cflow.sampling_size", ["1"])[0]
                )
            if rate:
                sampling[stream + (sid,)] = rate
            if "cflow.sys_init_time" in rec:
                sys_init[stream] = _ms(rec["cflow.sys_init_time"][0])
            continue
        rate = _first(rec, "cflow.sampling_interval")
        if not rate:
            sid = _first(rec, "cflow.sampler_id", "cflow.selector_id")
            rate = sampling.get(stream + (sid,)) or sampling.get(stream + (None,)) or 1
        version = int(h["cflow.version"])
        epoch = "Jan  1, 1970 00:00:00.0"
        if rec.get("cflow.abstimestart", [""])[0].startswith(epoch) and (
            version == 9 or stream in sys_init
        ):
            # tshark 4.0 shows a first/last switched of sysUptime 0 as absolute 1970-01-01 (for v9,
            # and for IPFIX once it knows the system init time); it is uptime 0: softflowd's
            # first flow starts when softflowd does.
            base = sys_init.get(stream, 0)
            end_abs = rec["cflow.abstimeend"][0]
            rec["cflow.timestart"] = ["0"]
            rec["cflow.timeend"] = [
                "0" if end_abs.startswith(epoch) else str((_ms(end_abs) - base) / 1000)
            ]
            del rec["cflow.abstimestart"]
        if "cflow.abstimestart" in rec:
            start, end = _ms(rec["cflow.abstimestart"][0]), _ms(rec["cflow.abstimeend"][0])
        elif "cflow.timestart" in rec:
            rel_s = round(float(rec["cflow.timestart"][0]) * 1000)
            rel_e = round(float(rec["cflow.timeend"][0]) * 1000)
            if version in (5, 9):
                now = (
                    int(h["cflow.unix_secs"]) * 1000
                    + int(h.get("cflow.unix_nsecs", 0)) // 1_000_000
                )
                up = round(float(h["cflow.sysuptime"]) * 1000)
                start, end = now - (up - rel_s), now - (up - rel_e)
            elif stream in sys_init:
                start, end = sys_init[stream] + rel_s, sys_init[stream] + rel_e
            else:  # our documented fallback: end at export time, duration kept
                export = int(h["cflow.exporttime"]) * 1000
                start, end = export - (rel_e - rel_s), export
        else:
            start = end = int(h.get("cflow.unix_secs", h.get("cflow.exporttime"))) * 1000
        flags = _first(rec, "cflow.tcpflags", conv=lambda v: int(v, 16))
        if frame:  # the record is the sampled frame tshark dissected inside it
            sport, dport, proto, flags = _l4(rec)
            rows.append(
                (
                    _addr(_first(rec, "ip.src", "ipv6.src", conv=str)),
                    _addr(_first(rec, "ip.dst", "ipv6.dst", conv=str)),
                    sport,
                    dport,
                    proto,
                    flags,
                    1,
                    _first(rec, "cflow.data_link_frame_size"),
                    _first(rec, "cflow.inputint"),
                    _first(rec, "cflow.outputint"),
                    start,
                    end,
                    rate,
                )
            )
            continue
        sport, dport = _first(rec, "cflow.srcport"), _first(rec, "cflow.dstport")
        if dport is None:  # ICMP-only templates: type<<8|code in dst_port, src_port 0 (as v5 does)
            dport = _first(rec, "cflow.icmp_type_code_ipv4", conv=lambda v: int(v, 16))
            if dport is None and "cflow.icmp_ipv6_type" in rec:
                dport = _first(rec, "cflow.icmp_ipv6_type") * 256 + _first(
                    rec, "cflow.icmp_ipv6_code"
                )
            sport = 0 if dport is not None and sport is None else sport
        rows.append(
            (
                _addr(_first(rec, "cflow.srcaddr", "cflow.srcaddrv6", conv=str)),
                _addr(_first(rec, "cflow.dstaddr", "cflow.dstaddrv6", conv=str)),
                sport,
                dport,
                _first(rec, "cflow.protocol"),
                flags,
                _first(rec, "cflow.packets", "cflow.packets64"),
                _first(rec, "cflow.octets", "cflow.octets64"),
                _first(rec, "cflow.inputint", "cflow.ingress_physical_interface"),
                _first(rec, "cflow.outputint", "cflow.egress_physical_interface"),
                start,
                end,
                rate,
            )
        )
    return rows


@pytest.mark.parametrize("case", sorted(CFLOW_CASES))
def test_netflow_ipfix_capture_matches_tshark(case, shared_data, tmp_path):
    pcap = _merge(shared_data, CFLOW_CASES[case], tmp_path)
    dec, ours = _decode(pcap)
    packets = oracle.run(pcap)
    expected = _tshark_cflow_rows(oracle.cflow_flows(packets))
    got = [_our_row(r) for r in ours]
    if case == "juniper-data-before-template":
        # The capture is fed twice. We hold the first data set (it precedes its template in the
        # datagram) and decode it once the template arrives; tshark cannot, so in the first copy
        # it decodes only the 10 records after the template. In the second copy it knows the
        # template and decodes all 21, which must equal what we produced for *each* copy.
        assert len(expected) == 10 + 21
        second = expected[10:]
        assert sorted(got[:21]) == sorted(second) and sorted(got[21:]) == sorted(second)
        assert dec.pending_records() == 0
        rates = {r[-1] for r in got}
        assert rates == {100}  # from the options data (sampling interval 100)
        return
    assert len(got) > 0
    assert sorted(got, key=repr) == sorted(expected, key=repr)
    tot = dec.stats.total
    assert tot.records == len(got)
    assert tot.errors == {}
    assert dec.pending_records() == 0
    # one datagram at a time decodes the same records as the batched fast path
    _, one = _decode(pcap, one_by_one=True)
    assert sorted(map(_our_row, one), key=repr) == sorted(got, key=repr)


def _l4(rec: dict) -> tuple:
    """(src port, dst port, protocol, TCP flags) of a packet tshark dissected; ICMP as type<<8|code."""
    proto = _first(rec, "ip.proto", "ipv6.nxt")
    if proto in (1, 58):
        sport, dport = (
            0,
            _first(rec, "icmp.type", "icmpv6.type") * 256 + _first(rec, "icmp.code", "icmpv6.code"),
        )
    else:
        sport, dport = (
            _first(rec, "tcp.srcport", "udp.srcport"),
            _first(rec, "tcp.dstport", "udp.dstport"),
        )
    flags = _first(rec, "tcp.flags", conv=lambda v: int(v, 16) & 0x1FF, default=0)
    return sport, dport, proto, flags


def _tshark_sflow_rows(flows: list[dict], times: list[int]) -> list[tuple]:
    rows = []
    for rec, t in zip(flows, times):
        sport, dport, proto, flags = _l4(rec)
        rows.append(
            (
                _addr(_first(rec, "ip.src", "ipv6.src", conv=str)),
                _addr(_first(rec, "ip.dst", "ipv6.dst", conv=str)),
                sport,
                dport,
                proto,
                flags,
                1,
                _first(rec, "sflow_245.header.frame_length"),
                _first(
                    rec,
                    "sflow.flow_sample.input_interface",
                    "sflow.flow_sample.input_interface_value",
                ),
                _first(rec, "sflow.flow_sample.output_interface_value"),
                t,
                t,
                _first(rec, "sflow.flow_sample.sampling_rate"),
            )
        )
    return rows


@pytest.mark.parametrize("case", sorted(SFLOW_CASES))
def test_sflow_capture_matches_tshark(case, shared_data, tmp_path):
    pcap = _merge(shared_data, SFLOW_CASES[case], tmp_path)
    dec, ours = _decode(pcap)
    packets = oracle.run(pcap)
    datagrams = oracle.read_udp(pcap)
    flows, times = [], []
    for pkt, (_, _, t, _) in zip(packets, datagrams):
        these = oracle.sflow_flows([pkt])
        flows += these
        times += [t] * len(these)
    expected = _tshark_sflow_rows(flows, times)
    got = [_our_row(r) for r in ours]
    assert len(got) > 0
    assert sorted(got, key=repr) == sorted(expected, key=repr)
    assert dec.stats.total.errors == {}
    src_as = [_first(f, "sflow_245.srcAS", default=0) for f in flows]
    assert sorted(r["src_as"] for r in ours) == sorted(src_as)
    assert all(
        r["packets"] == r["sampling_rate"] and r["bytes"] == r["bytes_raw"] * r["sampling_rate"]
        for r in ours
    )


def test_bmp_capture_holds_no_flow_datagrams(shared_data):
    """200-BMP-HUAWEI is BGP Monitoring Protocol over TCP, not flow export: nothing to decode."""
    pcap = shared_data / "flows" / PM / "200-BMP-HUAWEI-locrib_instance" / "traffic-00.pcap"
    assert oracle.read_udp(pcap) == []
    assert (
        "bmp"
        in subprocess.run(
            [
                "tshark",
                "-r",
                str(pcap),
                "-d",
                "tcp.port==1790,bmp",
                "-T",
                "fields",
                "-e",
                "frame.protocols",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    )


def test_every_shared_capture_is_covered(shared_data):
    covered = {f for files in (*CFLOW_CASES.values(), *SFLOW_CASES.values()) for f in files}
    covered.add(f"{PM}/200-BMP-HUAWEI-locrib_instance/traffic-00.pcap")
    on_disk = {
        str(p.relative_to(shared_data / "flows")) for p in (shared_data / "flows").rglob("*.pcap")
    }
    assert on_disk == covered
