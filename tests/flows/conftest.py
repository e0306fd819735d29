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
