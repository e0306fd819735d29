"""`aupguard users ...`, `aupguard tokens ...` and `aupguard web --help` through the real CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from aupguard.cli import app


@pytest.fixture
def cli(tmp_path):
    config = tmp_path / "aupguard.toml"
    config.write_text('data_dir = "data"\n', encoding="utf-8")
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(app, ["--config", str(config), *args], input=input)

    return run


def test_users_add_list_json_and_login_with_it(cli, tmp_path):
    added = cli("users", "add", "dora", "--role", "legal", input="a good long password\n")
    assert added.exit_code == 0, added.output
    assert "added user dora with role legal" in added.output
    listed = cli("users", "list", "--json")
    assert listed.exit_code == 0
    users = json.loads(listed.stdout)
    assert [(u["name"], u["role"], u["disabled"]) for u in users] == [("dora", "legal", False)]
    assert "password" not in listed.stdout.lower()

    from aupguard.config import load_settings
    from aupguard.store.db import open_store
    from aupguard.web import auth

    store = open_store(load_settings(tmp_path / "aupguard.toml"))
    with store.session() as session:
        assert auth.authenticate(session, "dora", "a good long password").role == "legal"
        assert auth.authenticate(session, "dora", "wrong password!!") is None
    store.dispose()


def test_users_add_rejects_bad_input_with_a_message(cli):
    short = cli("users", "add", "eve", "--role", "analyst", input="short\n")
    assert short.exit_code != 0 and "at least 10" in str(short.exception or short.output)
    role = cli("users", "add", "eve", "--role", "superuser", input="a good long password\n")
    assert role.exit_code != 0 and "unknown role" in str(role.exception or role.output)


def test_generated_password_is_printed_once(cli):
    added = cli("users", "add", "fred", "--role", "read-only", "--generate")
    assert added.exit_code == 0 and "password:" in added.output


def test_tokens_create_list_revoke(cli, tmp_path):
    created = cli("tokens", "create", "prometheus", "--role", "read-only")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("aupg_") and len(token) > 40
    listed = json.loads(cli("tokens", "list", "--json").stdout)
    assert [(t["name"], t["role"], t["revoked"], t["prefix"]) for t in listed] == [
        ("prometheus", "read-only", False, token[:12])]
    assert token not in cli("tokens", "list", "--json").stdout

    from fastapi.testclient import TestClient

    from aupguard.config import load_settings
    from aupguard.store.db import open_store
    from aupguard.web.app import create_app

    settings = load_settings(tmp_path / "aupguard.toml")
    store = open_store(settings)
    with TestClient(create_app(settings, store)) as client:
        assert client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert cli("tokens", "revoke", "prometheus").exit_code == 0
        assert client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    store.dispose()
    assert json.loads(cli("tokens", "list", "--json").stdout)[0]["revoked"] is True


def test_help_on_every_command(cli):
    for args in (["web"], ["users"], ["users", "add"], ["users", "list"], ["users", "passwd"],
                 ["users", "disable"], ["tokens"], ["tokens", "create"], ["tokens", "list"],
                 ["tokens", "revoke"]):
        result = cli(*args, "--help")
        assert result.exit_code == 0 and "Usage" in result.output, args


def test_aupguard_web_serves_until_stopped(tmp_path):
    """The real command in a child process: it serves /healthz and the login page, then stops."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx

    from tests.web.live import free_port

    config = tmp_path / "aupguard.toml"
    config.write_text('data_dir = "data"\n', encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "aupguard", "--config", str(config), "web",
                             "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})
    try:
        deadline, health = time.monotonic() + 60, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert health is not None and health.json() == {"status": "ok"}
        home = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert home.status_code == 303 and home.headers["location"] == "/login?next=%2F"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out = proc.communicate(timeout=20)[0].decode()
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0].decode()
    assert f"console and API on http://127.0.0.1:{port}/" in out
    assert proc.returncode is not None
