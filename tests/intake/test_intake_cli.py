"""`aupguard intake ...` end to end on the shipped samples."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from aupguard.cli import app
from aupguard.config import load_settings
from aupguard.store.db import open_store
from tests.intake.conftest import SAMPLES, seed_registry


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "aupguard.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    store = open_store(load_settings(path))
    with store.session() as session:
        seed_registry(session)
    store.dispose()
    return path


def cli(config, *args) -> str:
    result = CliRunner().invoke(app, ["-c", str(config), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_import_review_assign_show(config):
    imported = json.loads(cli(config, "intake", "import", str(SAMPLES), "--json"))
    assert len(imported) == len(list(SAMPLES.glob("*.eml")))
    assert {r["parser"] for r in imported} >= {"arf", "xarf", "acns", "shadowserver",
                                               "spamcop", "freetext"}
    review = json.loads(cli(config, "intake", "review", "--json"))
    spamcop = next(e for e in review if e["parser"] == "spamcop")
    assert sorted(spamcop["candidates"]) == ["cgnat-a", "cgnat-b"]
    assert "assigned" not in cli(config, "intake", "assign", str(spamcop["id"]), "cgnat-a")
    events = json.loads(cli(config, "intake", "events", "--status", "attributed", "--json"))
    assert any(e["id"] == spamcop["id"] and e["client_id"] == "cgnat-a" for e in events)
    messages = json.loads(cli(config, "intake", "messages", "--json"))
    acns = next(m for m in messages if m["parser"] == "acns")
    raw = cli(config, "intake", "show", str(acns["id"]), "--raw")
    assert "900100200" in raw
    shown = json.loads(cli(config, "intake", "show", str(acns["id"]), "--json"))
    assert shown["events"][0]["ip"] == "198.51.100.77"


def test_parse_dry_run_json(config):
    out = json.loads(cli(config, "intake", "parse", str(SAMPLES / "shadowserver-zip.eml"),
                         "--json"))
    assert out["parser"] == "shadowserver"
    assert [e["ip"] for e in out["events"]] == ["198.51.100.30", "198.51.100.31"]
    assert {e["clause_id"] for e in out["events"]} == {"mail.malware"}


def test_errors_are_clear_without_traceback(config):
    result = subprocess.run([sys.executable, "-m", "aupguard", "-c", str(config), "intake",
                             "assign", "99999", "acme"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert "no intake event 99999" in result.stderr and "Traceback" not in result.stderr


def test_hostile_subject_is_inert_in_tables(config):
    from aupguard.intake.cli import safe

    assert safe("[link=http://evil.example]x[/link]\x1b[31m") == \
        "\\[link=http://evil.example]x\\[/link]?[31m"
    cli(config, "intake", "import", str(SAMPLES / "hostile.eml"))
    out = cli(config, "intake", "messages")
    assert "<script>" in out and "\x1b" not in out
