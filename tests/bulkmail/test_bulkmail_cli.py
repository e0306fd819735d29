"""`aupguard suppress / optin / traps` end to end through the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from aupguard.cli import app
from aupguard.config import load_settings
from aupguard.registry import Client, add_client
from aupguard.store.db import open_store


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "aupguard.toml"
    path.write_text('data_dir = "data"\n[bulkmail]\nhash_suppressions = true\n'
                    'trap_addresses = ["trap@honey.example"]\n')
    store = open_store(load_settings(path))
    with store.session() as s:
        add_client(s, Client(id="acme", name="Acme", abuse_email="abuse@acme.example"))
    store.dispose()
    return path


def run(config, *args):
    result = CliRunner().invoke(app, ["-c", str(config), *args])
    return result


def test_suppress_import_and_screen(config, tmp_path):
    entries = tmp_path / "unsubs.txt"
    entries.write_text("gone@example.com\n@nomail.example\nnot valid\n")
    out = run(config, "suppress", "import", str(entries), "--client", "acme", "--source",
              "unsubscribe", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["added"] == 2 and json.loads(out.output)["invalid"] == 1
    assert run(config, "suppress", "add", "Global@Example.com").exit_code == 0
    listed = json.loads(run(config, "suppress", "list", "--json").output)
    assert all(r["hashed"] for r in listed) and not any("gone@" in r["value"] for r in listed)
    mailing = tmp_path / "list.csv"
    mailing.write_text("name,email\nA,gone@example.com\nB,x@nomail.example\nC,ok@example.com\n"
                       "D,global@example.com\n")
    clean = tmp_path / "clean.txt"
    out = run(config, "suppress", "screen", str(mailing), "--client", "acme", "--json", "--out", str(clean))
    data = json.loads(out.output)
    assert [(r["address"], r["kind"]) for r in data["suppressed"]] == [
        ("gone@example.com", "address"), ("x@nomail.example", "domain"), ("global@example.com", "address")]
    assert clean.read_text() == "ok@example.com\n"
    out = run(config, "suppress", "screen", str(mailing), "--json")   # global list only
    assert [r["address"] for r in json.loads(out.output)["suppressed"]] == ["global@example.com"]


def test_optin_cli_flow(config, tmp_path):
    records = tmp_path / "records.json"
    records.write_text(json.dumps({"records": [
        {"address": "a@example.com", "subscribed_at": "2026-09-01T10:00:00Z",
         "confirmed_at": "2026-09-01T10:01:00Z", "confirm_from": "a@example.com"},
        {"address": "b@example.com", "subscribed_at": "2026-09-01T10:00:00Z",
         "confirmed_at": "2026-08-01T10:01:00Z", "confirm_from": "b@example.com"}]}))
    out = run(config, "optin", "import", str(records), "--client", "acme", "--json")
    assert (json.loads(out.output)["verified"], json.loads(out.output)["forged"]) == (1, 1)
    out = run(config, "optin", "request", "acme", "--address", "b@example.com", "--days", "3", "--json")
    req = json.loads(out.output)
    assert req["status"] == "open" and req["outbox_id"] is not None
    out = run(config, "optin", "escalate", "--now", "2099-01-01T00:00:00Z", "--json")
    assert [r["id"] for r in json.loads(out.output)] == [req["id"]]
    produced = tmp_path / "out.json"
    assert run(config, "optin", "produce", "acme", "--out", str(produced)).exit_code == 0
    assert len(json.loads(produced.read_text())["records"]) == 2


def test_traps_cli(config):
    assert run(config, "traps", "check", "trap@honey.example").exit_code == 0
    assert run(config, "traps", "check", "real@example.com").exit_code == 1
    assert run(config, "traps", "record", "trap@honey.example", "--client", "acme").exit_code == 0
    data = json.loads(run(config, "traps", "hits", "--json").output)
    assert data["indicators"][0]["count"] == 1 and data["hits"][0]["client_id"] == "acme"
