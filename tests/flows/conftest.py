"""Fixtures for the flow collector, store and CLI tests."""

from __future__ import annotations

import socket

import pytest


def free_udp_port(address: str = "127.0.0.1") -> int:
    """A UDP port nobody holds right now on ``address``."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


@pytest.fixture
def flow_settings(settings):
    """Settings with the collector on free loopback ports and no metrics endpoint."""
    port = free_udp_port()
    settings.flows = settings.flows.model_copy(update={
        "listen": ["127.0.0.1"], "netflow_port": port, "sflow_port": 0,
        "metrics_port": 0, "flush_seconds": 0.5, "batch_wait_ms": 50,
    })
    return settings


@pytest.fixture(scope="session")
def softflowd_exports(tmp_path_factory):
    """Export datagrams softflowd sends for a seeded pcap: {version: (datagrams, records)}.

    Received on a plain UDP socket (the real bytes a collector would get); records is
    softflowd's own count of exported flow records.
    """
    import re
    import threading

    from tests.flows.traffic import run_softflowd, write_pcap

    base = tmp_path_factory.mktemp("exports")
    pcap = base / "traffic.pcap"
    write_pcap(pcap, seed=3, conversations=150)
    out = {}
    for version in (5, 9, 10):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.5)
        got: list[bytes] = []
        done = threading.Event()

        def receive(sock: socket.socket = sock, got: list[bytes] = got,
                    done: threading.Event = done) -> None:
            while True:
                try:
                    got.append(sock.recv(65535))
                except TimeoutError:
                    if done.is_set():
                        return

        t = threading.Thread(target=receive)
        t.start()
        try:
            result = run_softflowd(pcap, sock.getsockname()[1], version)
        finally:
            done.set()
            t.join()
            sock.close()
        m = re.search(r"Flows exported: \d+ \((\d+) records\)", result.stdout + result.stderr)
        assert m, result.stdout
        out[version] = (got, int(m.group(1)))
    return out
