"""Registry import and CLI: clear errors with line numbers, all-or-nothing, on both databases."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from aupguard.errors import InputError
from aupguard.registry import (
    add_client,
    list_assignments,
    list_clients,
    load_index,
    notice_recipients,
    reseller_chain,
)
from aupguard.registry.importer import import_file
from aupguard.registry.models import Client
from aupguard.store import audit

GOOD_CSV = """client_id,name,parent_id,abuse_email,emails,cdr_bps,prefix,valid_from,valid_to,port_lo,port_hi
cust,Customer Inc,resel,abuse@cust.example,noc@cust.example;ops@cust.example,,198.51.100.64/26,2026-01-01T00:00:00Z,,,
resel,Reseller Ltd,,abuse@resel.example,,1000000000,198.51.100.0/24,,,,
cust,,,,,,2001:db8:64::/48,,,,
cg1,CGNAT one,,a@cg1.example,,,203.0.113.5/32,,,1024,2047
"""


def test_csv_import_resellers_and_attribution(store, tmp_path):
    path = tmp_path / "clients.csv"
    path.write_text(GOOD_CSV)
    with store.session() as s:
        result = import_file(s, path)
    assert (result.clients, result.assignments) == (3, 4)
    with store.session() as s:
        assert [c.id for c in list_clients(s)] == ["cg1", "cust", "resel"]
        assert [c.id for c in reseller_chain(s, "cust")] == ["cust", "resel"]
        assert notice_recipients(s, "cust") == ["abuse@cust.example", "abuse@resel.example"]
        idx = load_index(s)
        assert idx.who("198.51.100.70", datetime(2026, 6, 1, tzinfo=timezone.utc)).client_id == "cust"
        assert idx.who("198.51.100.70", datetime(2025, 6, 1, tzinfo=timezone.utc)).client_id == "resel"
        assert idx.who("2001:db8:64::1").client_id == "cust"
        assert audit.verify(s).ok and audit.verify(s).checked == 7  # 3 clients + 4 assignments


def test_csv_errors_name_lines_and_import_nothing(store, tmp_path):
    bad = GOOD_CSV + "x,Bad,,a@x.example,,lots,10.0.0.0/33,,,,\ny,Bad2,,,,,10.0.0.1/24,2026-13-01,,,\n"
    path = tmp_path / "bad.csv"
    path.write_text(bad)
    with pytest.raises(InputError) as err, store.session() as s:
        import_file(s, path)
    msg = str(err.value)
    assert "nothing imported" in msg
    assert "bad.csv line 6 cdr_bps: 'lots' is not a whole number" in msg
    assert "bad.csv line 6" in msg and "10.0.0.0/33" in msg
    assert "bad.csv line 7" in msg and "host bits set" in msg
    assert "line 7 valid_from" in msg
    with store.session() as s:
        assert list_clients(s) == [] and list_assignments(s) == []


def test_unknown_column_and_missing_parent(sqlite_store, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("client_id,name,colour\na,A,blue\n")
    with pytest.raises(InputError, match="unknown column.*colour"), sqlite_store.session() as s:
        import_file(s, path)
    path.write_text("client_id,name,parent_id\na,A,ghost\n")
    with pytest.raises(InputError, match="parent 'ghost' does not exist"), sqlite_store.session() as s:
        import_file(s, path)
    path.write_text("client_id,name,parent_id\na,A,b\nb,B,a\n")
    with pytest.raises(InputError, match="cycle"), sqlite_store.session() as s:
        import_file(s, path)
    with sqlite_store.session() as s:
        assert list_clients(s) == []


def test_json_import(sqlite_store, tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"clients": [
        {"id": "h1", "name": "Hosting One", "cdr_bps": 5000000, "mail_servers": ["192.0.2.25"],
         "assignments": [{"prefix": "192.0.2.0/24", "valid_from": "2026-01-01T00:00:00Z",
                          "valid_to": "2026-07-01T00:00:00Z"}]}]}))
    with sqlite_store.session() as s:
        import_file(s, path)
    with sqlite_store.session() as s:
        c = list_clients(s)[0]
        assert (c.cdr_bps, c.mail_servers) == (5000000, ["192.0.2.25"])
        idx = load_index(s)
        assert idx.who("192.0.2.1", datetime(2026, 8, 1, tzinfo=timezone.utc)).status == "none"


def test_client_update_is_audited(sqlite_store):
    with sqlite_store.session() as s:
        add_client(s, Client(id="a", name="A"))
        add_client(s, Client(id="a", name="A renamed"))
        assert audit.verify(s).checked == 2
        assert list_clients(s)[0].name == "A renamed"


def test_cli_end_assignment_keeps_history(tmp_path):
    import subprocess
    import sys

    cfg = tmp_path / "aupguard.toml"
    run = lambda *a: subprocess.run([sys.executable, "-m", "aupguard", "-c", str(cfg), *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    assert subprocess.run([sys.executable, "-m", "aupguard", "init", str(cfg)],
                          capture_output=True, timeout=120).returncode == 0
    csv = tmp_path / "c.csv"
    csv.write_text("client_id,name,prefix,valid_from\nweb,Web,192.0.2.0/24,2026-01-01T00:00:00Z\n")
    assert run("clients", "import", str(csv)).returncode == 0
    [client] = json.loads(run("clients", "list", "--json").stdout)
    assignment_id = client["assignments"][0]["id"]
    out = run("clients", "end", str(assignment_id), "--at", "2026-06-01T00:00:00Z")
    assert out.returncode == 0, out.stderr
    assert run("clients", "who", "192.0.2.7", "--at", "2026-05-31T23:59:59Z").returncode == 0
    after = run("clients", "who", "192.0.2.7", "--at", "2026-06-01T00:00:00Z", "--json")
    assert after.returncode == 4 and json.loads(after.stdout)["status"] == "none"
    missing = run("clients", "end", "999")
    assert missing.returncode == 2 and "assignment 999 does not exist" in missing.stderr
