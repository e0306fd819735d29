"""The live collector: sockets, counters, kernel drops, metrics, listeners, stop, import."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

import dpkt
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aupguard.cli import app
from aupguard.errors import ConfigError, InputError
from aupguard.flows.collector import Collector, kernel_drops, open_udp_socket, stats_path
from aupguard.flows.pcap import datagrams, import_pcap
from aupguard.flows.store import read_flows
from tests.flows.conftest import free_udp_port


def _send(datagrams_: list[bytes], port: int, address: str = "127.0.0.1",
          pace_every: int = 50) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        for i, d in enumerate(datagrams_):
            s.sendto(d, (address, port))
            if i % pace_every == pace_every - 1:
                time.sleep(0.001)


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("writer_process", [False, True], ids=["inline", "writer-process"])
def test_counts_records_and_stores_them(flow_settings, softflowd_exports, writer_process):
    datagrams_, records = softflowd_exports[9]
    flow_settings.flows = flow_settings.flows.model_copy(
        update={"writer_process": writer_process})
    seen: list[int] = []
    with Collector(flow_settings) as collector:
        collector.add_listener(lambda table: seen.append(table.num_rows))
        _send(datagrams_, flow_settings.flows.netflow_port)
        assert collector.wait_idle(timeout=10)
        stats = collector.stats()
    c = stats["exporters"]["127.0.0.1"]
    assert c["datagrams"] == len(datagrams_)
    assert c["records"] == records  # softflowd's own count of exported records
    assert c["errors"] == {} and c["pending"] == 0 and c["sequence_gaps"] == 0
    assert sum(seen) == records  # listeners got every flow
    assert read_flows(flow_settings).num_rows == records
    assert stats["sockets"][0]["kernel_drops"] == 0


@pytest.mark.parametrize("writer_process", [False, True], ids=["inline", "writer-process"])
def test_stop_loses_nothing_accepted(flow_settings, softflowd_exports, writer_process):
    """Datagrams still in the kernel buffer or the batch queue are decoded and stored."""
    datagrams_, records = softflowd_exports[5]
    flow_settings.flows = flow_settings.flows.model_copy(
        update={"writer_process": writer_process})
    collector = Collector(flow_settings).start()
    _send(datagrams_, flow_settings.flows.netflow_port, pace_every=10**6)
    collector.stop()  # straight away: no wait
    assert collector.stats()["exporters"]["127.0.0.1"]["datagrams"] == len(datagrams_)
    assert read_flows(flow_settings).num_rows == records


def test_ipv6_listener_and_exporter_address(flow_settings, softflowd_exports):
    datagrams_, records = softflowd_exports[10]
    port = free_udp_port("::1")
    flow_settings.flows = flow_settings.flows.model_copy(
        update={"listen": ["::1"], "netflow_port": port})
    with Collector(flow_settings) as collector:
        assert collector.ports == [("::1", port)]
        _send(datagrams_, port, "::1")
        assert collector.wait_idle(timeout=10)
        stats = collector.stats()
    assert list(stats["exporters"]) == ["::1"]
    assert stats["exporters"]["::1"]["records"] == records
    table = read_flows(flow_settings)
    assert table.num_rows == records
    assert set(table.column("exporter").to_pylist()) == {b"\x00" * 15 + b"\x01"}


def test_malformed_datagrams_are_counted_and_collection_goes_on(flow_settings, softflowd_exports):
    datagrams_, records = softflowd_exports[5]
    junk = [b"", b"\x00", b"\x00\x05" + b"\xff" * 10, b"\x00\x63garbage", b"\x00\x09" * 700]
    with Collector(flow_settings) as collector:
        _send(junk + datagrams_ + junk, flow_settings.flows.netflow_port)
        assert collector.wait_idle(timeout=10)
        stats = collector.stats()
    c = stats["exporters"]["127.0.0.1"]
    assert c["datagrams"] == len(datagrams_) + 2 * len(junk)
    assert c["records"] == records
    assert sum(c["errors"].values()) >= 2 * (len(junk) - 1)  # each bad one counted
    assert stats["internal_errors"] == 0
    assert read_flows(flow_settings).num_rows == records


def test_enricher_and_listener_failures_do_not_lose_flows(flow_settings, softflowd_exports):
    datagrams_, records = softflowd_exports[9]
    from aupguard.flows.schema import ENRICHED_FIELDS

    def enrich(table: pa.Table) -> pa.Table:
        for f in ENRICHED_FIELDS:
            value = pa.array(["acme"] * table.num_rows) if f.name == "client" \
                else pa.nulls(table.num_rows, f.type)
            table = table.append_column(f, value)
        return table

    def broken_listener(table: pa.Table) -> None:
        raise RuntimeError("detection bug")

    with Collector(flow_settings, enricher=enrich) as collector:
        collector.add_listener(broken_listener)
        _send(datagrams_, flow_settings.flows.netflow_port)
        assert collector.wait_idle(timeout=10)
        stats = collector.stats()
    assert stats["internal_errors"] >= 1 and stats["enrichment"] is True
    table = read_flows(flow_settings)
    assert table.num_rows == records
    assert set(table.column("client").to_pylist()) == {"acme"}

    def broken_enricher(table: pa.Table) -> pa.Table:
        raise ValueError("no RIB")

    flow_settings.flows = flow_settings.flows.model_copy(update={"netflow_port": free_udp_port()})
    with Collector(flow_settings, enricher=broken_enricher) as collector:
        _send(datagrams_, flow_settings.flows.netflow_port)
        assert collector.wait_idle(timeout=10)
    assert read_flows(flow_settings).num_rows == 2 * records  # stored unenriched


def test_kernel_drop_counter_is_read_from_proc():
    sock, granted = open_udp_socket("127.0.0.1", 0, 65536)
    try:
        # Shrink the buffer below what is sent and do not read: the kernel must drop.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        import os

        inode = os.fstat(sock.fileno()).st_ino
        assert kernel_drops({inode}) == {inode: 0}
        port = sock.getsockname()[1]
        sent = 300
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for _ in range(sent):
                tx.sendto(b"x" * 1000, ("127.0.0.1", port))
        sock.setblocking(False)
        queued = 0
        while True:
            try:
                sock.recv(2000)
                queued += 1
            except BlockingIOError:
                break
        drops = kernel_drops({inode})[inode]
        assert drops > 0
        assert queued + drops == sent
    finally:
        sock.close()


def test_rcvbuf_granted_is_reported(flow_settings):
    with Collector(flow_settings) as collector:
        sock = collector.stats()["sockets"][0]
    assert sock["rcvbuf_asked"] == 32 * 1024 * 1024
    # As root SO_RCVBUFFORCE passes net.core.rmem_max; otherwise rmem_max caps it.
    with open("/proc/sys/net/core/rmem_max") as fh:
        rmem_max = int(fh.read())
    assert sock["rcvbuf_bytes"] in (32 * 1024 * 1024, rmem_max)


def test_port_in_use_is_a_clear_error(flow_settings):
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", flow_settings.flows.netflow_port))
    try:
        with pytest.raises(ConfigError, match="another collector"):
            Collector(flow_settings).start()
    finally:
        blocker.close()


def test_prometheus_metrics_and_stats_file(flow_settings, softflowd_exports):
    datagrams_, records = softflowd_exports[9]
    port = _free_tcp_port()
    flow_settings.flows = flow_settings.flows.model_copy(
        update={"metrics_port": port, "stats_interval_seconds": 0.2})
    with Collector(flow_settings) as collector:
        _send(datagrams_, flow_settings.flows.netflow_port)
        assert collector.wait_idle(timeout=10)
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        time.sleep(0.8)  # the housekeeping thread rewrites the stats file
        on_disk = json.loads(stats_path(flow_settings).read_text())
    assert f'aupguard_flow_datagrams_total{{exporter="127.0.0.1"}} {float(len(datagrams_))}' in text
    assert f'aupguard_flow_records_total{{exporter="127.0.0.1"}} {float(records)}' in text
    assert 'aupguard_flow_socket_drops_total{socket="127.0.0.1:' in text
    assert on_disk["running"] is True
    assert on_disk["exporters"]["127.0.0.1"]["records"] == records
    # After stop the endpoint is gone and the file holds the final counters.
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
    final = json.loads(stats_path(flow_settings).read_text())
    assert final["running"] is False and final["store"]["records_written"] == records


def test_cli_collect_stats(flow_settings, softflowd_exports, tmp_path):
    datagrams_, records = softflowd_exports[5]
    config = tmp_path / "aupguard.toml"
    config.write_text(f'data_dir = "{flow_settings.data_dir}"\n')
    runner = CliRunner()
    missing = runner.invoke(app, ["-c", str(config), "collect", "--stats"])
    assert missing.exit_code != 0 and "start `aupguard collect`" in str(missing.exception)
    with Collector(flow_settings) as collector:
        _send(datagrams_, flow_settings.flows.netflow_port)
        assert collector.wait_idle(timeout=10)
    result = runner.invoke(app, ["-c", str(config), "collect", "--stats", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["exporters"]["127.0.0.1"]["datagrams"] == len(datagrams_)
    assert data["exporters"]["127.0.0.1"]["records"] == records
    table = runner.invoke(app, ["-c", str(config), "collect", "--stats"])
    assert table.exit_code == 0 and "127.0.0.1" in table.output and "not running" in table.output


def test_cli_collect_runs_for_a_duration(flow_settings, tmp_path, softflowd_exports):
    import threading

    datagrams_, records = softflowd_exports[10]
    port = flow_settings.flows.netflow_port
    config = tmp_path / "aupguard.toml"
    config.write_text(f'data_dir = "{flow_settings.data_dir}"\n[flows]\nmetrics_port = 0\n'
                      f'listen = ["127.0.0.1"]\nsflow_port = 0\nnetflow_port = {port}\n')
    def send_once_bound() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the port is taken once the collector listens
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                    probe.bind(("127.0.0.1", port))
            except OSError:
                _send(datagrams_, port)
                return
            time.sleep(0.05)

    sender = threading.Thread(target=send_once_bound)
    sender.start()
    result = CliRunner().invoke(app, ["-c", str(config), "collect", "--duration", "4"])
    sender.join()
    assert result.exit_code == 0, result.output
    assert f"listening on udp 127.0.0.1:{port}" in result.output
    assert f"{records:,} stored" in result.output
    assert read_flows(flow_settings).num_rows == records


# -- offline import ---------------------------------------------------------------------

def _write_capture(path, payloads: list[bytes], port: int, fragment_at: int | None = None) -> None:
    """Ethernet pcap of UDP datagrams from 192.0.2.9 to port; optionally IPv4-fragmented."""
    with open(path, "wb") as fh:
        w = dpkt.pcap.Writer(fh, linktype=dpkt.pcap.DLT_EN10MB)
        for i, payload in enumerate(payloads):
            udp = dpkt.udp.UDP(sport=40000, dport=port, data=payload)
            udp.ulen = len(udp)
            ip = dpkt.ip.IP(src=socket.inet_aton("192.0.2.9"), dst=socket.inet_aton("192.0.2.1"),
                            p=17, id=i + 1, data=udp)
            frames = []
            if fragment_at is None or len(bytes(udp)) <= fragment_at:
                frames.append(bytes(ip))
            else:
                whole = bytes(udp)
                cut = fragment_at - fragment_at % 8
                for off, chunk, more in ((0, whole[:cut], 1), (cut, whole[cut:], 0)):
                    frag = dpkt.ip.IP(src=ip.src, dst=ip.dst, p=17, id=ip.id, data=chunk)
                    frag.mf, frag.offset = more, off // 8  # offset in 8-byte units
                    frames.append(bytes(frag))
                frames.reverse()  # out of order on purpose
            for raw in frames:
                eth = dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_IP, data=raw)
                w.writepkt(bytes(eth), ts=1793613600 + i)


def test_import_pcap_plain_and_fragmented(settings, softflowd_exports, tmp_path):
    datagrams_, records = softflowd_exports[9]
    plain = tmp_path / "plain.pcap"
    _write_capture(plain, datagrams_, 2055)
    got = list(datagrams(plain))
    assert [d for d, _, _ in got] == datagrams_
    assert {e for _, e, _ in got} == {"192.0.2.9"}
    stats, dstats = import_pcap(plain, settings)
    assert stats.datagrams == len(datagrams_) and stats.flows == records
    assert dstats.as_dict()["total"]["records"] == records
    frag = tmp_path / "frag.pcap"
    _write_capture(frag, datagrams_, 2055, fragment_at=600)
    assert max(len(d) for d in datagrams_) > 600  # so some really are fragmented
    assert [d for d, _, _ in datagrams(frag)] == datagrams_
    other_port = tmp_path / "other.pcap"
    _write_capture(other_port, datagrams_, 7777)
    assert list(datagrams(other_port)) == []
    assert len(list(datagrams(other_port, ports=None))) == len(datagrams_)


def test_cli_import_json_and_bad_files(settings, softflowd_exports, tmp_path):
    datagrams_, records = softflowd_exports[10]
    cap = tmp_path / "ipfix.pcap"
    _write_capture(cap, datagrams_, 4739)
    config = tmp_path / "aupguard.toml"
    config.write_text(f'data_dir = "{settings.data_dir}"\n')
    runner = CliRunner()
    result = runner.invoke(app, ["-c", str(config), "flows", "import", str(cap), "--json"])
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.output)
    assert report["datagrams"] == len(datagrams_) and report["flows"] == records
    assert report["decode"]["errors"] == {}
    assert read_flows(settings).num_rows == records
    # A capture cut in the middle of a record: what came before is imported.
    cut = tmp_path / "cut.pcap"
    last_frame = 14 + 20 + 8 + len(datagrams_[-1])
    cut.write_bytes(cap.read_bytes()[:-(last_frame // 2)])
    result = runner.invoke(app, ["-c", str(config), "flows", "import", str(cut), "--json"])
    [report] = json.loads(result.output)
    assert report["datagrams"] == len(datagrams_) - 1
    assert report["skipped"] == {"datagram truncated by the capture": 1}
    assert report["decode"]["errors"] == {}
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a capture at all")
    with pytest.raises(InputError, match="not a pcap or pcapng"):
        list(datagrams(bogus))
    result = runner.invoke(app, ["-c", str(config), "flows", "import", str(bogus)])
    assert result.exit_code != 0


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600), st.sampled_from([b"", b"\xd4\xc3\xb2\xa1", b"\x0a\x0d\x0d\x0a"]))
def test_capture_reader_survives_hostile_files(tmp_path, body, magic):
    """Any bytes: datagrams() yields or raises InputError, never crashes or hangs."""
    path = tmp_path / "fuzz.pcap"
    path.write_bytes(magic + body)
    try:
        for payload, exporter, ms in datagrams(path, ports=None):
            assert isinstance(payload, bytes) and payload and isinstance(ms, int)
    except InputError:
        pass


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(min_size=0, max_size=200), max_size=20))
def test_capture_reader_survives_hostile_packets(tmp_path, frames):
    """A valid pcap whose frames are garbage: counted, skipped, never a crash."""
    from aupguard.flows.pcap import ImportStats

    path = tmp_path / "frames.pcap"
    with open(path, "wb") as fh:
        w = dpkt.pcap.Writer(fh, linktype=dpkt.pcap.DLT_EN10MB)
        for i, frame in enumerate(frames):
            w.writepkt(frame, ts=1_700_000_000 + i)
    stats = ImportStats()
    got = list(datagrams(path, ports=None, stats=stats))
    assert stats.packets == len(frames)
    assert len(got) <= len(frames)
    if not got:  # nothing decodable: every frame accounted for as skipped or held
        assert sum(stats.skipped.values()) >= 1 or not frames


def test_unavailable_address_is_skipped_not_fatal(flow_settings):
    # 192.0.2.1 (TEST-NET) is not configured on this host: EADDRNOTAVAIL.
    flow_settings.flows = flow_settings.flows.model_copy(
        update={"listen": ["127.0.0.1", "192.0.2.1"]})
    with Collector(flow_settings) as collector:
        assert [a for a, _ in collector.ports] == ["127.0.0.1"]
    flow_settings.flows = flow_settings.flows.model_copy(update={"listen": ["192.0.2.1"]})
    with pytest.raises(ConfigError, match="no listen address is usable"):
        Collector(flow_settings).start()
