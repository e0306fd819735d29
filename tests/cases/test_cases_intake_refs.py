"""Evidence handed in by intake (raw messages in its own store, referenced by raw_ref)."""

from __future__ import annotations

import hashlib

import pytest

from aupguard.cases import evidence
from aupguard.cases import service as cases

from .conftest import add_incident

RAW = (b"From: reporter@victim.example\r\nSubject: spam\r\n\r\n"
       b"Spam received from 192.0.2.10, see attached headers.\r\n")


@pytest.fixture
def registry(lite_registry):
    return lite_registry


def _intake_item(settings, raw: bytes, write: bool = True) -> dict:
    sha = hashlib.sha256(raw).hexdigest()
    ref = f"raw/{sha[:2]}/{sha[2:4]}/{sha}.eml"
    if write:
        path = settings.data_dir / "intake" / ref
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
    return {"kind": "complaint", "reference": "AG-1", "event_id": 7, "raw_ref": ref,
            "excerpt": "Spam received from 192.0.2.10 (intake excerpt)"}


def test_intake_raw_message_is_adopted_linked_and_quoted(registry, settings):
    item = _intake_item(settings, RAW)
    add_incident(registry, clause="mail.spam", source="complaint", evidence=[item])
    with registry.session() as s:
        (case,) = cases.ingest_incidents(s, settings)
        sha = hashlib.sha256(RAW).hexdigest()
        assert sha in [e.sha256 for e in cases.case_evidence(s, settings, case.id)]
        assert evidence.get(settings, sha) == RAW
        assert evidence.custody(settings, sha)[0]["meta"] == {
            "source": "intake", "reference": "AG-1", "event_id": 7, "kind": "complaint"}
        body = cases.preview_notice(s, settings, case.id).body
    assert "> Spam received from 192.0.2.10, see attached headers." in body
    assert "raw_ref=" not in body and "reporter@victim.example" not in body


def test_missing_intake_raw_falls_back_to_its_excerpt(registry, settings):
    item = _intake_item(settings, RAW + b"other", write=False)
    add_incident(registry, clause="mail.spam", source="complaint", evidence=[item])
    with registry.session() as s:
        (case,) = cases.ingest_incidents(s, settings)
        body = cases.preview_notice(s, settings, case.id).body
    assert "> Spam received from 192.0.2.10 (intake excerpt)" in body


def test_corrupt_or_escaping_raw_refs_are_not_adopted(registry, settings):
    item = _intake_item(settings, RAW)
    path = settings.data_dir / "intake" / item["raw_ref"]
    path.write_bytes(b"tampered")
    assert evidence.adopt(settings, item) == hashlib.sha256(RAW).hexdigest()
    assert not evidence.blob_path(settings, hashlib.sha256(RAW).hexdigest()).exists()
    assert evidence.ref_of({"raw_ref": "raw/../../../etc/passwd"}) is None
    assert evidence.ref_of({"sha256": "../x"}) is None
    assert evidence.ref_of({"src": "192.0.2.1"}) is None


def test_csam_intake_evidence_is_held(registry, settings):
    item = _intake_item(settings, b"csam report body")
    add_incident(registry, clause="content.csam", source="complaint", evidence=[item])
    with registry.session() as s:
        (case,) = cases.ingest_incidents(s, settings)
        items = cases.case_evidence(s, settings, case.id)
        assert len(items) == 2 and all(i.held and i.held_until is None for i in items)
