"""Real complaint samples (../shared/data) as case evidence: readable, redacted, restricted."""

from __future__ import annotations

import pytest

from aupguard.cases import evidence, notices
from aupguard.cases import service as cases

from .conftest import add_incident

pytestmark = pytest.mark.shared


@pytest.fixture
def registry(lite_registry):
    """SQLite only here: these tests check content and formats, not the database."""
    return lite_registry


def test_real_arf_reports_quoted_readably_without_complainant_addresses(shared_data, registry,
                                                                        settings):
    files = sorted((shared_data / "abuse-reports" / "arf").glob("*.eml"))
    assert files, "no ARF samples"
    with registry.session() as s:
        for i, path in enumerate(files):
            raw = path.read_bytes()
            sha = evidence.put(settings, raw, "complaint", {"file": path.name})
            client = "c1" if i % 2 else "c2"
            from aupguard.incidents import report

            from .conftest import finding

            report(s, finding(clause="mail.spam", client=client, source="complaint", rule="arf",
                              evidence=[{"sha256": sha}], key=f"arf:{path.name}"))
            touched = cases.ingest_incidents(s, settings)
            body = cases.preview_notice(s, settings, touched[0].id).body
            assert notices._EMAIL.findall(body) == [], path.name
            cases.set_status(s, touched[0].id, "closed", "test")  # next sample opens its own case
        yahoo = (shared_data / "abuse-reports" / "arf" / "Yahoo_example_1.eml").read_bytes()
        assert "This is an email abuse report for an email message received from 10.17.18.25" \
            in notices.readable(yahoo)


def test_real_xarf_csam_report_never_reaches_the_notice(shared_data, registry, settings):
    raw = (shared_data / "abuse-reports" / "xarf_v4" / "content-csam.json").read_bytes()
    sha = evidence.put(settings, raw, "complaint", {"format": "xarf4"})
    add_incident(registry, clause="content.csam", client="c1", source="complaint", rule="xarf",
                 evidence=[{"sha256": sha}], summary="https://example.com/illegal-content",
                 offender="198.51.100.42")
    with registry.session() as s:
        (case,) = cases.ingest_incidents(s, settings)
        body = cases.preview_notice(s, settings, case.id).body
    for needle in ("example.com/illegal-content", "e3b0c442", "12345678", "198.51.100.42", sha):
        assert needle not in body
