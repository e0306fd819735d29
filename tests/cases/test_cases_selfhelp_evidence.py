"""The client's self-help link, and the content-addressed evidence store."""

from __future__ import annotations

import hashlib
import os
import time

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from aupguard.cases import evidence
from aupguard.cases import service as cases
from aupguard.errors import InputError

from .conftest import add_incident


@pytest.fixture
def registry(lite_registry):
    """SQLite only here: these tests check content and formats, not the database."""
    return lite_registry


def test_self_help_link_view_and_answer(registry, settings, monkeypatch):
    sha = evidence.put(settings, b"From: victim@victim.example\n\nflood from 192.0.2.10", "complaint", {})
    add_incident(registry, clause="security.flood", client="c1", evidence=[{"sha256": sha}],
                 summary="UDP flood toward 198.51.100.7")
    with registry.session() as s:
        (case,) = cases.ingest_incidents(s, settings)
        cases.send_notice(s, settings, case.id, "alice")
        token = cases.client_token(settings, case.id)
        view = cases.client_view(s, settings, token)
        assert (view.case_id, view.client_name, view.clause_id) == (case.id, "Client One",
                                                                    "security.flood")
        assert "Interference with service" in view.clause_text or "flood" in view.clause_text
        (happened,) = view.what_happened
        assert happened["summary"] == "UDP flood toward 198.51.100.7"
        assert "victim@victim.example" not in happened["excerpt"]  # redacted for the client too
        assert "flood from 192.0.2.10" in happened["excerpt"]
        assert [m.kind for m in view.messages] == ["notice"]
        assert "to" not in view.messages[0].data  # other recipients stay internal
        entry = cases.client_reply(s, settings, token, "  Fixed: closed the open resolver.  ")
        assert entry.text == "Fixed: closed the open resolver." and entry.actor == "client:c1"
        assert cases.get_case(s, case.id).status == "awaiting_client"
        with pytest.raises(InputError, match="empty"):
            cases.client_reply(s, settings, token, "   ")
        with pytest.raises(InputError, match="not valid"):
            cases.client_view(s, settings, token[:-2] + "xx")
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 31 * 86400)
    with registry.session() as s:
        with pytest.raises(InputError, match="expired"):
            cases.client_view(s, settings, token)


def test_evidence_store_is_content_addressed_and_append_only(settings):
    data = b"raw complaint bytes\x00\xff"
    sha = evidence.put(settings, data, "complaint", {"source": "smtp"})
    assert sha == hashlib.sha256(data).hexdigest()
    again = evidence.put(settings, data, "complaint", {"source": "imap"})
    assert again == sha
    path = evidence.blob_path(settings, sha)
    assert path.read_bytes() == data
    assert os.stat(path).st_mode & 0o222 == 0  # written once, read-only
    assert [c["meta"]["source"] for c in evidence.custody(settings, sha)] == ["smtp", "imap"]
    info = evidence.info(settings, sha)
    assert (info.kind, info.size, info.present) == ("complaint", len(data), True)
    assert evidence.get(settings, sha) == data and evidence.verify(settings, sha)
    os.chmod(path, 0o644)
    path.write_bytes(b"tampered")
    assert not evidence.verify(settings, sha)
    with pytest.raises(InputError, match="corrupt"):
        evidence.get(settings, sha)
    with pytest.raises(InputError, match="SHA-256"):
        evidence.get(settings, "../../etc/passwd")
    with pytest.raises(InputError, match="not in the store"):
        evidence.get(settings, "a" * 64)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=4096))
def test_evidence_roundtrip(settings, data):
    sha = evidence.put(settings, data, "x", {})
    assert evidence.get(settings, sha) == data
    assert sha in set(evidence.iter_blobs(settings))
