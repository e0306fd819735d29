"""`aupguard reputation ...` and `aupguard probe smtp` end to end."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from aupguard.cli import app
from aupguard.config import load_settings
from aupguard.registry import Client, add_assignment, add_client
from aupguard.store.db import open_store
from tests.reputation.smtp_servers import AioSmtp

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture
def config(tmp_path, rbldnsd):
    path = tmp_path / "aupguard.toml"
    path.write_text(f"""
data_dir = "data"
[reputation]
resolver = "127.0.0.1"
resolver_port = {rbldnsd.port}
timeout = 1.0
[[reputation.zones]]
name = "bl.test"
codes = {{ "127.0.0.2" = "test listing" }}
""")
    store = open_store(load_settings(path))
    with store.session() as s:
        add_client(s, Client(id="acme", name="Acme"))
        add_assignment(s, "acme", "192.0.2.0/29")
    store.dispose()
    return path


def test_check_listings_history(config, rbldnsd):
    rbldnsd.write("bl.test", ["192.0.2.3"])
    rbldnsd.reload()
    runner = CliRunner()
    out = runner.invoke(app, ["-c", str(config), "reputation", "check", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["addresses"] == 8 and data["errors"] == 0
    assert [(n["address"], n["client_id"]) for n in data["new_listings"]] == [("192.0.2.3", "acme")]
    out = runner.invoke(app, ["-c", str(config), "reputation", "listings", "--json"])
    rows = json.loads(out.output)
    assert [(r["address"], r["zone"], r["meanings"]) for r in rows] == [
        ("192.0.2.3", "bl.test", ["test listing"])]
    out = runner.invoke(app, ["-c", str(config), "reputation", "history", "192.0.2.3"])
    assert "still listed" in out.output
    out = runner.invoke(app, ["-c", str(config), "reputation", "runs", "--json"])
    assert json.loads(out.output)[0]["listed"] == 1


def test_probe_cli_refuses_then_probes_lab_target(config):
    server = AioSmtp(auth_required=True)
    server.start()
    try:
        runner = CliRunner()
        refused = runner.invoke(app, ["-c", str(config), "probe", "smtp", f"127.0.0.1:{server.port}"])
        assert refused.exit_code != 0 and "not inside any client assignment" in str(refused.exception)
        out = runner.invoke(app, ["-c", str(config), "probe", "smtp", f"127.0.0.1:{server.port}",
                                  "--allow-unassigned", "--json"])
        assert out.exit_code == 0, out.output
        [result] = json.loads(out.output)
        assert result["verdict"] == "closed" and result["auth_required"] is True
    finally:
        server.stop()
