"""`aupguard run`'s scheduled monitors against a real rbldnsd on loopback."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import pytest

from aupguard.config import Settings
from aupguard.incidents import list_incidents
from aupguard.registry import add_assignment, add_client
from aupguard.registry.models import Client
from aupguard.reputation.config import DnsblZone
from aupguard.runner import monitor_work
from aupguard.store.db import open_store


@pytest.fixture
def zone_server(tmp_path):
    if shutil.which("rbldnsd") is None:
        pytest.skip("rbldnsd not installed (scripts/install installs Debian's rbldnsd)")
    from tests.reputation.conftest import Rbldnsd

    root = tmp_path / "zones"
    root.mkdir()
    server = Rbldnsd(root, {"bl.test": "bl.zone"})
    server.write("bl.test", ["192.0.2.9"])
    server.start()
    yield server
    server.stop()


def test_scheduled_dnsbl_check_runs_when_due_and_opens_incident(tmp_path, zone_server):
    settings = Settings(data_dir=tmp_path / "data")
    settings.reputation.resolver_port = zone_server.port
    settings.reputation.zones = [DnsblZone(name="bl.test")]
    settings.reputation.check_interval_hours = 6
    store = open_store(settings)
    with store.session() as s:
        add_client(s, Client(id="web1", name="Web One", abuse_email="a@web1.example"))
        add_assignment(s, "web1", "192.0.2.8/30")
    now = datetime.now(timezone.utc)
    assert monitor_work(settings, store, now, None) is True
    assert monitor_work(settings, store, now + timedelta(hours=1), now) is False  # not due yet
    with store.session() as s:
        [incident] = list_incidents(s, source="monitor")
    assert (incident.client_id, incident.clause_id) == ("web1", "security.blacklisting")
    assert "192.0.2.9" in incident.offender


def test_no_zones_and_no_probe_schedule_touch_nothing(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    store = open_store(settings)
    assert monitor_work(settings, store, datetime.now(timezone.utc), None) is False
    with store.session() as s:
        assert list_incidents(s) == []
