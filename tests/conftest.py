"""Fixtures shared by every stage's tests.

- ``store``: a migrated state store, parametrised over SQLite and PostgreSQL
  (a real server started from Debian's binaries on loopback).
- ``settings``: embedded defaults pointing at a temporary data directory.
- ``shared_data``: ../shared/data, or a skip saying why.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from aupguard.config import Settings
from aupguard.store.db import Store

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("AUPGUARD_SHARED", REPO.parent / "shared"))
_db_counter = itertools.count()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    data = SHARED / "data"
    if not data.is_dir():
        pytest.skip(f"real-world samples not available: {data} is absent (only in the dev workspace)")
    return data


@pytest.fixture(scope="session")
def pg_server():
    from tests.pg_server import PostgresServer, pg_bindir

    if not pg_bindir():
        pytest.skip("PostgreSQL binaries not installed (.ci/run installs Debian's postgresql)")
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    """A freshly migrated store, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        server = request.getfixturevalue("pg_server")
        url = server.create_database(f"t{os.getpid()}_{next(_db_counter)}")
    st = Store(url)
    st.migrate()
    yield st
    st.dispose()


@pytest.fixture
def sqlite_store(tmp_path):
    """SQLite only, for tests that do not exercise the database itself."""
    st = Store(f"sqlite:///{tmp_path / 'state.db'}")
    st.migrate()
    yield st
    st.dispose()
