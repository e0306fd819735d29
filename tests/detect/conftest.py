"""Fixtures for detection tests: the small client world of flowgen in a real store."""

from __future__ import annotations

import pytest

from aupguard.config import Settings
from aupguard.detect import feeds
from aupguard.registry import Client, add_assignment, add_client
from tests.detect import flowgen as g

FEED_TEXT = f"# test C2 list\n{g.C2_ADDRESS}\n"


def populate(store, tmp_path) -> None:
    with store.session() as session:
        add_client(session, Client(id="acme", name="Acme Hosting", abuse_email="abuse@acme.test"))
        add_client(session, Client(id="beta", name="Beta Broadband", abuse_email="abuse@beta.test",
                                   mail_servers=[g.BETA_MAIL]))
        add_assignment(session, "acme", g.ACME_NET)
        add_assignment(session, "beta", g.BETA_NET)
        path = tmp_path / "c2.txt"
        path.write_text(FEED_TEXT)
        feeds.load(session, path, "plain", name="test-c2")


def detect_settings(tmp_path, **detect) -> Settings:
    base = {"client_interfaces": {"beta": [f"{g.EXPORTER}:7"]}}
    base.update(detect)
    return Settings(data_dir=tmp_path / "data", detect=base)


@pytest.fixture
def world(sqlite_store, tmp_path):
    populate(sqlite_store, tmp_path)
    return sqlite_store
