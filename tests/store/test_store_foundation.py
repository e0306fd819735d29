"""State store: migrations from empty on SQLite and PostgreSQL, audit chain, incidents, config."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, text

from aupguard.config import load_settings, parse_settings
from aupguard.errors import ConfigError
from aupguard.incidents import Finding, end_quiet, list_incidents, report
from aupguard.store import audit, outbox


def test_migrations_apply_from_empty_and_are_idempotent(store):
    tables = set(inspect(store.engine).get_table_names())
    assert {"audit_log", "outbox", "incidents", "clients", "assignments", "policy_versions",
            "policy_acceptance", "alembic_version"} <= tables
    store.migrate()  # a second run is a no-op, not an error
    with store.engine.connect() as conn:
        heads = {r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))}
    assert {"store_0002", "registry_0001", "policy_0001", "incidents_0001"} <= heads


def test_audit_verify_detects_modified_and_deleted_rows(store):
    with store.session() as s:
        for i in range(5):
            audit.record(s, "alice", "thing.change", "thing", i, before={"v": i}, after={"v": i + 1})
    with store.session() as s:
        result = audit.verify(s)
        assert result.ok and result.checked == 5
        ids = [r[0] for r in s.execute(text("SELECT id FROM audit_log ORDER BY id"))]
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor='mallory' WHERE id=:i"), {"i": ids[2]})
    with store.session() as s:
        result = audit.verify(s)
        assert not result.ok and result.broken_at == ids[2] and "modified" in result.reason
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor='alice' WHERE id=:i"), {"i": ids[2]})
        conn.execute(text("DELETE FROM audit_log WHERE id=:i"), {"i": ids[3]})
    with store.session() as s:
        result = audit.verify(s)
        assert result.broken_at == ids[4] and "deleted" in result.reason


def test_incident_grows_then_ends(store):
    t0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)

    def finding(offset: int, peak: float) -> Finding:
        return Finding(source="flow", rule="syn_flood", clause_id="security.flood",
                       key="syn_flood:victim=198.51.100.7", client_id="c1", victim="198.51.100.7",
                       first_seen=t0 + timedelta(seconds=offset),
                       last_seen=t0 + timedelta(seconds=offset + 1), peak=peak,
                       metrics={"pps": peak})

    with store.session() as s:
        first = report(s, finding(0, 30000))
        report(s, finding(5, 90000))
        report(s, finding(10, 50000))
    with store.session() as s:
        [row] = list_incidents(s)
        assert row.id == first.id and row.observations == 3 and row.peak == 90000
        assert row.metrics == {"pps": 90000} and row.policy_version == "2014"
        assert row.last_seen == t0 + timedelta(seconds=11)
        assert end_quiet(s, t0 + timedelta(seconds=20), timedelta(seconds=60)) == []
        assert [r.id for r in end_quiet(s, t0 + timedelta(seconds=200), timedelta(seconds=60))] == [row.id]
        report(s, finding(300, 1000))
    with store.session() as s:
        assert len(list_incidents(s)) == 2
        assert audit.verify(s).ok


def test_outbox_queue(sqlite_store):
    with sqlite_store.session() as s:
        outbox.enqueue(s, kind="ack", to=["r@example.org"], subject="s", body="b")
        assert [m.to_addrs for m in outbox.queued(s)] == [["r@example.org"]]


def test_config_errors_name_key_and_allowed_values(tmp_path):
    with pytest.raises(ConfigError) as err:
        parse_settings({"store": {"ulr": "x"}, "data_dir": 5}, "x.toml")
    msg = str(err.value)
    assert "store.ulr: unknown key" in msg
    bad = tmp_path / "aupguard.toml"
    bad.write_text("data_dir = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_cli_init_writes_a_config_that_loads_and_bad_config_is_a_clear_error(tmp_path):
    cfg = tmp_path / "aupguard.toml"
    run = lambda *a, **kw: subprocess.run([sys.executable, "-m", "aupguard", *a],  # noqa: E731
                                          capture_output=True, text=True, timeout=120, **kw)
    out = run("init", str(cfg))
    assert out.returncode == 0, out.stderr
    settings = load_settings(cfg)
    assert settings.data_dir == (tmp_path / "aupguard-data").resolve()
    assert (tmp_path / "aupguard-data" / "state.db").exists()
    assert "[store]" in cfg.read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text('data_dir = "d"\n[store]\nulr = "sqlite://"\n')
    out = run("--config", str(bad), "clients", "list")
    assert out.returncode == 2
    assert "store.ulr: unknown key" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_bad_csv_reports_line_and_imports_nothing(tmp_path):
    cfg = tmp_path / "aupguard.toml"
    subprocess.run([sys.executable, "-m", "aupguard", "init", str(cfg)], check=True,
                   capture_output=True, timeout=120)
    csv = tmp_path / "c.csv"
    csv.write_text("client_id,name,prefix\nok,OK,192.0.2.0/24\nbad,Bad,192.0.2.300/32\n")
    out = subprocess.run([sys.executable, "-m", "aupguard", "-c", str(cfg), "clients", "import", str(csv)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "c.csv line 3" in out.stderr and "Traceback" not in out.stderr
    listed = subprocess.run([sys.executable, "-m", "aupguard", "-c", str(cfg), "clients", "list", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert listed.stdout.strip() == "[]"


def test_audit_chain_survives_many_entries_and_a_rolled_back_savepoint(store):
    with store.session() as s:
        for i in range(50):
            audit.record(s, "bulk", "thing.change", "thing", i)
        try:
            with s.begin_nested():
                audit.record(s, "bulk", "thing.change", "thing", "doomed")
                raise RuntimeError("roll the savepoint back")
        except RuntimeError:
            pass
        audit.record(s, "bulk", "thing.change", "thing", "after")
    with store.session() as s:
        audit.record(s, "next", "thing.change", "thing", "next transaction")
    with store.session() as s:
        result = audit.verify(s)
        assert result.ok, result.reason
        assert result.checked == 52
