"""Tamper evidence: the audit chain, export archives; the CLI on top of them."""

from __future__ import annotations

import io
import json
import tarfile

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import text
from typer.testing import CliRunner

from aupguard.cases import evidence, keys
from aupguard.cases import service as cases
from aupguard.cli import app
from aupguard.store.audit import AuditEntry, verify

from .conftest import add_incident


def _config(tmp_path, store, settings) -> str:
    path = tmp_path / "aupguard.toml"
    path.write_text(f'data_dir = "{settings.data_dir}"\n[store]\nurl = "{store.url}"\n',
                    encoding="utf-8")
    return str(path)


def _worked_case(store, settings) -> int:
    sha = evidence.put(settings, b"complaint: flood from 192.0.2.10", "complaint", {"via": "test"})
    add_incident(store, clause="security.flood", client="c1", source="complaint",
                 evidence=[{"sha256": sha}])
    with store.session() as s:
        (case,) = cases.ingest_incidents(s, settings)
        cases.send_notice(s, settings, case.id, "alice")
        cases.add_note(s, case.id, "called the client", "alice")
        cases.escalate(s, settings, case.id, "alice")
    return case.id


def test_audit_verify_detects_modified_row(registry, settings):
    store = registry
    _worked_case(store, settings)
    with store.session() as s:
        assert verify(s).ok
        target = s.query(AuditEntry).filter_by(action="case.note").one()
        target_id = target.id
        total = s.query(AuditEntry).count()
        assert verify(s).checked == total
    with store.engine.begin() as conn:  # an insider edits the note behind the application's back
        conn.execute(text("UPDATE audit_log SET note = 'nothing happened' WHERE id = :id"),
                     {"id": target_id})
    with store.session() as s:
        result = verify(s)
    assert not result.ok and result.broken_at == target_id and "modified" in result.reason
    with store.engine.begin() as conn:  # deleting a row breaks the link instead
        conn.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": target_id + 1})
    with store.session() as s:
        assert verify(s).broken_at is not None


def test_audit_cli_verify_and_log(lite_registry, settings, tmp_path):
    store = lite_registry
    case_id = _worked_case(store, settings)
    config = _config(tmp_path, store, settings)
    runner = CliRunner()
    ok = runner.invoke(app, ["--config", config, "audit", "verify", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["ok"] is True
    log = runner.invoke(app, ["--config", config, "audit", "log", "--entity", "case",
                              "--id", str(case_id), "--json"])
    actions = [e["action"] for e in json.loads(log.output)]
    assert actions[:3] == ["case.open", "case.incident", "case.notice"]
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE action = 'case.note'"))
    bad = runner.invoke(app, ["--config", config, "audit", "verify"])
    assert bad.exit_code == 1 and "broken at entry" in bad.output


def test_export_verifies_and_detects_tampering(lite_registry, settings, tmp_path):
    registry = lite_registry
    case_id = _worked_case(registry, settings)
    with registry.session() as s:
        path = cases.export_case(s, settings, case_id, tmp_path / "case.tar.gz", actor="legal")
    check = cases.verify_export(path, settings)
    assert check.ok and check.method == "ed25519" and check.key_matches_ours
    with tarfile.open(path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    assert {"case.json", "timeline.json", "custody.json", "manifest.json", "signature.json",
            "evidence/index.json"} <= set(members)
    blobs = [n for n in members if n.startswith("evidence/") and n != "evidence/index.json"]
    assert len(blobs) == 2  # the complaint and the incident snapshot
    assert b"complaint: flood from 192.0.2.10" in members[next(
        n for n in blobs if members[n].startswith(b"complaint"))]
    custody = json.loads(members["custody.json"])
    assert {"case.open", "case.notice", "case.escalate"} <= {e["action"] for e in custody["audit_log"]}
    assert all(custody["store_intake"][n.split("/")[1]] for n in blobs)
    timeline = json.loads(members["timeline.json"])
    assert "called the client" in [e["text"] for e in timeline]

    def rewrite(change) -> str:
        out = tmp_path / f"tampered-{len(list(tmp_path.iterdir()))}.tar.gz"
        data = dict(members)
        change(data)
        with tarfile.open(out, "w:gz") as tar:
            for name, content in data.items():
                info = tarfile.TarInfo(name)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
        return out

    def edit_timeline(d):
        d["timeline.json"] = d["timeline.json"].replace(b"called the client", b"client agreed")

    def edit_manifest(d):
        manifest = json.loads(d["manifest.json"])
        manifest["files"]["timeline.json"] = "0" * 64
        d["manifest.json"] = json.dumps(manifest).encode()

    def add_file(d):
        d["evidence/extra"] = b"planted"

    for change, expected in ((edit_timeline, "timeline.json altered"),
                             (edit_manifest, "signature does not match"),
                             (add_file, "not in the manifest")):
        result = cases.verify_export(rewrite(change), settings)
        assert not result.ok and any(expected in p for p in result.problems), result.problems
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not an archive")
    assert not cases.verify_export(garbage).ok


def test_export_hmac_fallback(lite_registry, settings, tmp_path, monkeypatch):
    registry = lite_registry
    monkeypatch.setattr(keys, "ed25519_available", lambda: False)
    case_id = _worked_case(registry, settings)
    with registry.session() as s:
        path = cases.export_case(s, settings, case_id, tmp_path / "h.tar.gz")
    check = cases.verify_export(path, settings)
    assert check.ok and check.method == "hmac-sha256"
    settings.cases.secret_key = "another installation"
    assert not cases.verify_export(path, settings).ok


def test_cli_workflow(lite_registry, settings, tmp_path):
    store = lite_registry
    add_incident(store, clause="mail.spam", client="c1")
    config = _config(tmp_path, store, settings)
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(app, ["--config", config, *args])
        assert result.exit_code == 0, result.output
        return result.output

    assert "1 case(s)" in run("cases", "ingest")
    (case,) = json.loads(run("cases", "list", "--json"))
    assert (case["client_id"], case["status"]) == ("c1", "open")
    assert "noc@client1.example" in run("cases", "notify", str(case["id"]), "--preview")
    queued = json.loads(run("cases", "notify", str(case["id"]), "--json"))
    assert queued["to"] == ["noc@client1.example"]
    step = json.loads(run("cases", "escalate", str(case["id"]), "--json"))
    assert step["name"] == "warning" and step["status"] == "escalated"
    run("cases", "note", str(case["id"]), "left a voicemail")
    run("cases", "assign", str(case["id"]), "bob")
    shown = json.loads(run("cases", "show", str(case["id"]), "--json"))
    assert shown["case"]["owner"] == "bob"
    assert "left a voicemail" in [e["text"] for e in shown["timeline"]]
    out = tmp_path / "c.tar.gz"
    run("cases", "export", str(case["id"]), "--out", str(out))
    assert "signature valid" in run("cases", "verify-export", str(out))
    bad = runner.invoke(app, ["--config", config, "cases", "status", str(case["id"]), "open"])
    assert bad.exit_code != 0 and "can move to" in str(bad.exception)
    assert json.loads(run("cases", "strikes", "c1", "--json"))["active"] == 0
    deliver = runner.invoke(app, ["--config", config, "cases", "deliver"])
    assert deliver.exit_code == 1 and "smtp_enabled" in deliver.output
    sweep = json.loads(run("cases", "evidence-check", "--json"))
    assert sweep["checked"] >= 1 and sweep["corrupt"] == []
    (item,) = shown["evidence"]
    blob = evidence.blob_path(settings, item["sha256"])
    blob.chmod(0o644)
    blob.write_bytes(b"swapped")
    bad_sweep = runner.invoke(app, ["--config", config, "cases", "evidence-check"])
    assert bad_sweep.exit_code == 1 and item["sha256"] in bad_sweep.output


@hsettings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=3000), gz=st.booleans())
def test_verify_export_rejects_garbage_without_crashing(tmp_path, payload, gz):
    import gzip

    path = tmp_path / "x.tar.gz"
    path.write_bytes(gzip.compress(payload) if gz else payload)
    result = cases.verify_export(path)
    assert not result.ok and result.problems


def test_verify_export_rejects_wrong_shapes(tmp_path):
    for manifest, signature in ((b"[]", b"{}"), (b'{"files": []}', b"{}"), (b"\xff", b"{}")):
        path = tmp_path / "shape.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            for name, data in (("manifest.json", manifest), ("signature.json", signature)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        result = cases.verify_export(path)
        assert not result.ok and result.problems
