"""Real exporter end to end: softflowd -v 5 / 9 / 10 -> live collector on loopback -> store.

One seeded pcap of ordinary traffic is exported by Debian's softflowd three
times (NetFlow v5, v9, IPFIX) to a live :class:`Collector`, while dumpcap
captures the export datagrams. Then, for each version:

- the store holds exactly the flows the generator made (5-tuple, packets, IP bytes),
- the flow times follow the capture (softflowd -a),
- tshark decodes the same records from the capture of those datagrams,
- the three stores hold the same flows,
- the collector's counters equal what was sent (datagrams in the capture).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aupguard.flows.collector import Collector
from aupguard.flows.pcap import datagrams
from aupguard.flows.query import render_addresses
from aupguard.flows.store import read_flows
from tests.flows.conftest import free_udp_port
from tests.flows.traffic import Capture, expected_flows, run_softflowd, tshark_flows, write_pcap

VERSIONS = (5, 9, 10)
# NetFlow v9 headers carry whole seconds only and flow times are uptime offsets, so a
# v9 flow time is exact to 1 s; v5 (with nanoseconds) and IPFIX (absolute ms) to 1 ms.
TIME_TOLERANCE_S = {5: 0.002, 9: 1.0, 10: 0.002}


def _key(row: dict) -> tuple:
    # softflowd's v9/IPFIX template for ICMP has no source port: the decoder gives
    # null there where v5 has 0. Same flow either way.
    return (row["src_addr"], row["dst_addr"], row["src_port"] or 0, row["dst_port"], row["proto"])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{version: (store rows by key, collector stats, tshark records, datagrams captured)}."""
    from aupguard.config import Settings

    base = tmp_path_factory.mktemp("softflowd")
    pcap = base / "traffic.pcap"
    packets = write_pcap(pcap, seed=11, conversations=300)
    results = {}
    for version in VERSIONS:
        port = free_udp_port()
        settings = Settings(data_dir=base / f"v{version}")
        settings.flows = settings.flows.model_copy(update={
            "listen": ["127.0.0.1"], "netflow_port": port, "sflow_port": 0, "metrics_port": 0})
        capture = Capture(port, base / f"exports-v{version}.pcap").start()
        collector = Collector(settings).start()
        try:
            run_softflowd(pcap, port, version)
            assert collector.wait_idle(timeout=15)
        finally:
            collector.stop()
            capture.stop()
        table = render_addresses(read_flows(settings))
        rows = {}
        for row in table.to_pylist():
            assert _key(row) not in rows, f"v{version}: flow {_key(row)} stored twice"
            rows[_key(row)] = row
        oracle = tshark_flows(capture.path, port)
        captured = sum(1 for _ in datagrams(capture.path, ports=frozenset({port})))
        results[version] = (rows, collector.stats(), oracle, captured, table)
    return packets, results


@pytest.mark.parametrize("version", VERSIONS)
def test_store_matches_generated_traffic(exported, version):
    packets, results = exported
    rows, *_ = results[version]
    expected = expected_flows(packets)
    assert len(expected) > 400
    assert set(rows) == set(expected)
    for key, flow in expected.items():
        got = rows[key]
        assert (got["packets"], got["bytes"]) == (flow.packets, flow.bytes), key
        # softflowd tracks both directions of a conversation as one flow: each
        # direction's record carries the conversation's first and last time.
        tol = TIME_TOLERANCE_S[version]
        rev = expected.get((key[1], key[0], key[3], key[2], key[4]), flow)
        first, last = min(flow.first, rev.first), max(flow.last, rev.last)
        assert abs(got["start"].timestamp() - first) <= tol, (key, got["start"], first)
        assert abs(got["end"].timestamp() - last) <= tol, (key, got["end"], last)
        assert got["flow_version"] == version
        assert got["exporter"] == "127.0.0.1"
        assert got["sampling_rate"] == 1 and got["packets_raw"] == got["packets"]


@pytest.mark.parametrize("version", VERSIONS)
def test_store_matches_tshark_decode_of_the_datagrams(exported, version):
    _, results = exported
    rows, _, oracle, *_ = results[version]
    assert oracle, "tshark decoded no flow records from the capture"
    decoded = {}
    for rec in oracle:
        key = (rec["src"], rec["dst"], rec["sport"], rec["dport"], rec["proto"])
        decoded[key] = (rec["packets"], rec["bytes"])
    ours = {k: (r["packets"], r["bytes"]) for k, r in rows.items()}
    # tshark decodes every record we stored with the same counters ...
    assert {k: ours[k] for k in decoded} == decoded
    if version == 9:
        # ... except softflowd's v9 datagrams that also carry a template: their header
        # count covers the flow records only and tshark stops there (see
        # ../shared/data/README.md). We follow flowset lengths and decode all of them.
        assert len(decoded) <= len(ours)
        assert len(ours) - len(decoded) < 0.1 * len(ours)
    else:
        assert set(decoded) == set(ours)


def test_three_versions_store_the_same_flows(exported):
    _, results = exported
    tables = {v: {k: (r["packets"], r["bytes"]) for k, r in results[v][0].items()}
              for v in VERSIONS}
    assert tables[5] == tables[9] == tables[10]


@pytest.mark.parametrize("version", VERSIONS)
def test_collector_counters_equal_what_was_sent(exported, version):
    _, results = exported
    rows, stats, oracle, captured, table = results[version]
    exporters = stats["exporters"]
    assert list(exporters) == ["127.0.0.1"]
    c = exporters["127.0.0.1"]
    assert c["datagrams"] == captured
    assert c["datagrams"] == stats["sockets"][0]["datagrams"] > 0
    assert c["records"] == len(rows) == table.num_rows
    assert c["errors"] == {} and c["pending"] == 0
    if version != 10:
        # softflowd numbers IPFIX messages counting their own records too (RFC 7011
        # counts those before), so a strict decoder sees gaps where none are; v5/v9 agree.
        assert c["sequence_gaps"] == 0
    assert stats["flows_out"] == stats["store"]["records_written"] == len(rows)
    assert stats["store"]["buffered"] == 0 and stats["internal_errors"] == 0
    sock = stats["sockets"][0]
    assert sock["kernel_drops"] == 0  # read from /proc/net/udp for this socket
    assert sock["rcvbuf_bytes"] >= 4 * 1024 * 1024


def test_flow_times_are_in_the_capture_hour(exported):
    _, results = exported
    for version in VERSIONS:
        table = results[version][4]
        hours = {t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
                 for t in table.column("start").to_pylist()}
        assert hours <= {datetime(2026, 11, 2, 9, tzinfo=UTC),
                         datetime(2026, 11, 2, 10, tzinfo=UTC)}
