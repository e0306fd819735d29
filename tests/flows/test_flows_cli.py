"""`aupguard flows top|query|prune` and the query helpers on known data."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aupguard.cli import app
from aupguard.errors import InputError
from aupguard.flows.cli import parse_since
from aupguard.flows.query import addresses_to_text, run_query, top
from aupguard.flows.store import FlowWriter, flows_root, open_duckdb, partitions
from tests.flows.traffic import flows_table

NOW = datetime.now(UTC).replace(microsecond=0)

# Known data: 10.0.0.1 has 3 flows (2 to port 25), 10.0.0.2 one, 2001:db8::7 two.
KNOWN = [
    {"src_addr": "10.0.0.1", "dst_addr": "192.0.2.25", "dst_port": 25, "proto": 6,
     "packets": 10, "bytes": 1000},
    {"src_addr": "10.0.0.1", "dst_addr": "192.0.2.26", "dst_port": 25, "proto": 6,
     "packets": 20, "bytes": 2000},
    {"src_addr": "10.0.0.1", "dst_addr": "192.0.2.53", "dst_port": 53, "proto": 17,
     "packets": 1, "bytes": 80},
    {"src_addr": "10.0.0.2", "dst_addr": "192.0.2.25", "dst_port": 25, "proto": 6,
     "packets": 50, "bytes": 70000},
    {"src_addr": "2001:db8::7", "dst_addr": "2001:db8:1::25", "dst_port": 443, "proto": 6,
     "packets": 4, "bytes": 400},
    {"src_addr": "2001:db8::7", "dst_addr": "2001:db8:1::25", "dst_port": 443, "proto": 6,
     "packets": 5, "bytes": 500},
]


@pytest.fixture
def known_store(settings, tmp_path):
    rows = [{**r, "start": NOW - timedelta(minutes=10 + i)} for i, r in enumerate(KNOWN)]
    rows.append({"src_addr": "10.9.9.9", "start": NOW - timedelta(days=3), "packets": 999})
    writer = FlowWriter.from_settings(settings)
    writer.add(flows_table(rows))
    writer.flush()
    config = tmp_path / "aupguard.toml"
    config.write_text(f'data_dir = "{settings.data_dir}"\n', encoding="utf-8")
    return settings, config


def _cli(config, *args):
    result = CliRunner().invoke(app, ["-c", str(config), *args], catch_exceptions=False)
    return result


def test_top_by_source_counts_and_shares(known_store):
    settings, _ = known_store
    con = open_duckdb(settings)
    rows = top(con, "src", since=NOW - timedelta(hours=1)).to_pylist()
    assert [(r["src"], r["flows"], r["packets"], r["bytes"]) for r in rows] == [
        ("10.0.0.1", 3, 31, 3080), ("2001:db8::7", 2, 9, 900), ("10.0.0.2", 1, 50, 70000)]
    assert rows[0]["flows_pct"] == 50.0
    assert rows[2]["bytes_pct"] == round(100 * 70000 / 73980, 2)
    # The 3-day-old flow counts once the window covers it.
    everything = top(con, "src", order="packets", limit=1).to_pylist()
    assert everything[0]["src"] == "10.9.9.9" and everything[0]["packets"] == 999


def test_top_with_filter_order_and_other_keys(known_store):
    settings, _ = known_store
    con = open_duckdb(settings)
    smtp = top(con, "src", NOW - timedelta(hours=1), where="proto = 6 AND dst_port = 25",
               order="bytes").to_pylist()
    assert [(r["src"], r["flows"], r["bytes"]) for r in smtp] == [
        ("10.0.0.2", 1, 70000), ("10.0.0.1", 2, 3000)]
    assert smtp[0]["flows_pct"] == round(100 / 3, 2)
    ports = top(con, "dstport", NOW - timedelta(hours=1)).to_pylist()
    assert [(r["dstport"], r["flows"]) for r in ports] == [(25, 3), (443, 2), (53, 1)]
    protos = top(con, "proto", NOW - timedelta(hours=1)).to_pylist()
    assert [(r["proto"], r["flows"]) for r in protos] == [(6, 5), (17, 1)]
    dst = top(con, "dst", NOW - timedelta(hours=1), limit=1).to_pylist()
    assert dst == [{"dst": "192.0.2.25", "flows": 2, "packets": 60, "bytes": 71000,
                    "flows_pct": 33.33, "packets_pct": 66.67, "bytes_pct": 95.97}]
    with pytest.raises(InputError, match="choose one of"):
        top(con, "color")
    with pytest.raises(InputError, match="--filter"):
        top(con, "src", where="no_such_column = 1")


def test_query_renders_addresses_and_ip_function(known_store):
    settings, _ = known_store
    con = open_duckdb(settings)
    table = run_query(con, "SELECT src_addr, dst_addr, packets FROM flows "
                           "WHERE src_addr = ip('2001:db8::7') ORDER BY packets")
    assert table.to_pylist() == [
        {"src_addr": "2001:db8::7", "dst_addr": "2001:db8:1::25", "packets": 4},
        {"src_addr": "2001:db8::7", "dst_addr": "2001:db8:1::25", "packets": 5}]
    text = run_query(con, "SELECT ip_text(src_addr) AS s FROM flows WHERE packets = 50")
    assert text.to_pylist() == [{"s": "10.0.0.2"}]
    with pytest.raises(InputError, match="query failed"):
        run_query(con, "SELECT nope FROM flows")


def test_cli_top_json_and_table(known_store):
    _, config = known_store
    result = _cli(config, "flows", "top", "--by", "src", "--since", "1h", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["src"], r["flows"]) for r in rows] == [("10.0.0.1", 3), ("2001:db8::7", 2),
                                                      ("10.0.0.2", 1)]
    result = _cli(config, "flows", "top", "--by", "dstport", "--since", "1h",
                  "--filter", "proto = 6 and dst_port = 25", "--limit", "5")
    assert result.exit_code == 0
    assert "top 5 by dstport" in result.output and "25" in result.output
    assert "443" not in result.output


def test_cli_query_json(known_store):
    _, config = known_store
    result = _cli(config, "flows", "query", "--json",
                  "SELECT src_addr, count(*) AS n FROM flows GROUP BY 1 ORDER BY n DESC, 1")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {"src_addr": "10.0.0.1", "n": 3}, {"src_addr": "2001:db8::7", "n": 2},
        {"src_addr": "10.0.0.2", "n": 1}, {"src_addr": "10.9.9.9", "n": 1}]


def test_cli_prune(known_store):
    settings, config = known_store
    assert len(partitions(flows_root(settings))) >= 2
    result = _cli(config, "flows", "prune", "--days", "1", "--json")
    assert result.exit_code == 0
    removed = json.loads(result.output)
    assert len(removed) == 1 and "date=" in removed[0]
    left = _cli(config, "flows", "query", "--json", "SELECT max(packets) AS m FROM flows")
    assert json.loads(left.output) == [{"m": 50}]


def test_parse_since_forms():
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert parse_since("1h", now=now) == now - timedelta(hours=1)
    assert parse_since("30m", now=now) == now - timedelta(minutes=30)
    assert parse_since("2d", now=now) == now - timedelta(days=2)
    assert parse_since("2026-11-01T00:00:00") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("") is None
    import typer

    with pytest.raises(typer.BadParameter, match="duration"):
        parse_since("yesterday-ish")


@hsettings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.integers(0, 2**32 - 1).map(lambda v: (0xFFFF << 32 | v).to_bytes(16, "big")),
    st.binary(min_size=16, max_size=16),
    st.none()), max_size=40))
def test_addresses_to_text_matches_ipaddress(values):
    array = pa.array(values, type=pa.binary(16))
    expected = []
    for v in values:
        if v is None:
            expected.append(None)
            continue
        a = ipaddress.IPv6Address(v)
        expected.append(str(a.ipv4_mapped) if a.ipv4_mapped else str(a))
    assert addresses_to_text(array).to_pylist() == expected
    # DuckDB hands BLOBs back as variable binary: same answer.
    assert addresses_to_text(array.cast(pa.binary())).to_pylist() == expected


@pytest.mark.shared
def test_cli_import_real_router_captures(shared_data, settings, tmp_path):
    """`flows import` on captures from real exporters: NetFlow v5 on a non-default
    port (tshark as the oracle), sFlow, and IPFIX/v9 from an IPv6 exporter."""
    from aupguard.flows.store import read_flows
    from tests.flows.traffic import tshark_flows

    config = tmp_path / "aupguard.toml"
    config.write_text(f'data_dir = "{settings.data_dir}"\n', encoding="utf-8")
    v5 = shared_data / "flows" / "akvorado" / "nfv5.pcap"
    # Port 9990 is not a default export port: skipped unless asked for.
    skipped = _cli(config, "flows", "import", str(v5), "--json")
    assert json.loads(skipped.output)[0]["skipped"] == {"other UDP port": 1}
    result = _cli(config, "flows", "import", str(v5), "--port", "9990", "--json")
    [report] = json.loads(result.output)
    oracle = tshark_flows(v5, 9990)
    assert report["flows"] == len(oracle) > 0 and report["decode"]["errors"] == {}
    stored = read_flows(settings)
    got = sorted((r["packets"], r["bytes"]) for r in stored.to_pylist())
    assert got == sorted((o["packets"], o["bytes"]) for o in oracle)

    sflow = shared_data / "flows" / "akvorado" / "data-sflow-raw-ipv4.pcap"
    mixed = (shared_data / "flows" / "pmacct-test-automation"
             / "111-IPFIXv10-NFv9-IPv6-IPv4-mix_sources" / "traffic-01.pcap")
    result = _cli(config, "flows", "import", str(sflow), str(mixed), "--any-port", "--json")
    reports = json.loads(result.output)
    assert [r["decode"]["errors"] for r in reports] == [{}, {}]
    assert all(r["flows"] > 0 and r["decode"]["pending"] == 0 for r in reports)
    rows = json.loads(_cli(config, "flows", "query", "--json",
                           "SELECT DISTINCT exporter FROM flows").output)
    exporters = {r["exporter"] for r in rows}
    assert exporters == {"10.19.144.41", "172.19.64.116", "2001:4d98:a100:303:0:931:f:1"}
