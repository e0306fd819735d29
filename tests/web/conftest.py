"""Fixtures for the web tests: an app over a migrated store with users of every role and cases."""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import pytest

from tests.web.scenario import PASSWORD, add_cases, add_users

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    # Starlette's TestClient warns that it will move to httpx2; not our concern here.
    for item in items:
        if Path(str(item.fspath)).parent == HERE:
            item.add_marker(pytest.mark.filterwarnings("ignore:Using `httpx`"))


@pytest.fixture(scope="session")
def web_template(tmp_path_factory):
    """Migrate, add users and cases once; each test gets a copy (migrations take seconds)."""
    from aupguard.config import Settings
    from aupguard.store.db import Store

    data = tmp_path_factory.mktemp("web-template") / "data"
    settings = Settings(data_dir=data)
    store = Store(settings.database_url)
    store.migrate()
    world = add_users(store)
    add_cases(store, settings, world)
    store.dispose()  # closes every connection: the SQLite WAL is checkpointed into the file
    return data, world


@pytest.fixture
def web_env(web_template, tmp_path):
    from aupguard.config import Settings
    from aupguard.store.db import Store

    template, world = web_template
    data = tmp_path / "data"
    shutil.copytree(template, data)
    settings = Settings(data_dir=data)
    store = Store(settings.database_url)
    yield settings, store, copy.deepcopy(world)
    store.dispose()


@pytest.fixture
def world(web_env):
    return web_env[2]


@pytest.fixture
def web_store(web_env):
    return web_env[1]


@pytest.fixture
def web_settings(web_env):
    return web_env[0]


@pytest.fixture
def app(web_env):
    from aupguard.web.app import create_app

    settings, store, _ = web_env
    return create_app(settings, store)


@pytest.fixture
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


def login(client, name: str, password: str = PASSWORD) -> str:
    """Log `client` in through the real form; returns the session's CSRF token."""
    page = client.get("/login")
    nonce = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    response = client.post("/login", data={"username": name, "password": password,
                                           "csrf": nonce, "next": "/"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/", response.text
    home = client.get("/")
    assert home.status_code == 200
    return re.search(r'name="csrf" value="([^"]+)"', home.text).group(1)


def bearer(world, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[role]}"}
