"""Legal duties: CSAM restrictions, mandatory report, legal hold over retention, strikes."""

from __future__ import annotations

import tarfile
from datetime import timedelta

import pytest

from aupguard.cases import evidence
from aupguard.cases import service as cases
from aupguard.config import parse_settings
from aupguard.errors import AupguardError, ConfigError, InputError
from aupguard.store.types import utcnow

from .conftest import T0, add_incident

MATERIAL = b"RESTRICTED-MATERIAL-MARKER: description of the reported material"


def _csam_case(store, settings) -> tuple[int, str]:
    sha = evidence.put(settings, MATERIAL, "complaint", {"format": "xarf", "category": "csam"})
    add_incident(store, clause="content.csam", client="c1", source="complaint",
                 summary="CSAM-SUMMARY-MARKER hosted at http://192.0.2.10/x",
                 evidence=[{"sha256": sha, "kind": "complaint"}])
    with store.session() as s:
        (case,) = cases.ingest_incidents(s, settings)
    return case.id, sha


def test_csam_cases_are_restricted(registry, settings):
    case_id, sha = _csam_case(registry, settings)
    add_incident(registry, clause="security.flood", client="c1")
    with registry.session() as s:
        cases.ingest_incidents(s, settings)
        visible = [c.clause_id for c in cases.list_cases(s)]
        assert visible == ["security.flood"]
        legal = {c.id: c for c in cases.list_cases(s, restricted_ok=True)}
        case = legal[case_id]
        assert cases.is_restricted(case) and case.priority == "urgent"
        assert "MARKER" not in case.title
        assert all("MARKER" not in t.text for t in cases.timeline(s, case_id))
        items = cases.case_evidence(s, settings, case_id)
        assert sha in [i.sha256 for i in items]
        assert all(i.held and i.held_until is None for i in items)  # held until reported


def test_csam_notice_and_client_view_carry_no_evidence(registry, settings):
    case_id, sha = _csam_case(registry, settings)
    with registry.session() as s:
        message = cases.send_notice(s, settings, case_id, "legal")
        step = cases.escalate(s, settings, case_id, "legal")  # suspension
        view = cases.client_view(s, settings, cases.client_token(settings, case_id))
        from aupguard.store.outbox import OutboxMessage

        bodies = [message.body, s.get(OutboxMessage, step.message_id).body]
    for body in bodies:
        assert "MARKER" not in body and sha not in body and "192.0.2.10" not in body
        assert "cannot be" in body and "forwarded" in body
    assert step.name == "suspension"
    assert view.what_happened == []
    assert "MARKER" not in view.model_dump_json()


def test_csam_case_cannot_close_without_mandatory_report(registry, settings):
    case_id, sha = _csam_case(registry, settings)
    with registry.session() as s:
        for status in ("closed", "resolved"):
            with pytest.raises(AupguardError, match="mandatory report"):
                cases.set_status(s, case_id, status, "legal")
        with pytest.raises(InputError, match="authority and its report id"):
            cases.record_mandatory_report(s, case_id, "", "X", utcnow(), "legal", settings=settings)
    reported = utcnow() - timedelta(days=1)
    with registry.session() as s:
        report = cases.record_mandatory_report(s, case_id, "NCMEC CyberTipline", "CT-123456",
                                               reported, "legal", settings=settings)
        assert (report.authority, report.report_id, report.recorded_by) == (
            "NCMEC CyberTipline", "CT-123456", "legal")
        items = cases.case_evidence(s, settings, case_id)
        assert all(i.held_until == reported + timedelta(days=365) for i in items)
        closed = cases.set_status(s, case_id, "closed", "legal", note="reported and removed")
        assert closed.status == "closed" and closed.has_mandatory_report


def test_retention_never_deletes_held_evidence(registry, settings):
    settings.cases.evidence_retention_days = 30
    case_id, csam_sha = _csam_case(registry, settings)
    plain_sha = evidence.put(settings, b"an ordinary spam complaint", "complaint", {})
    now = utcnow()
    with registry.session() as s:
        young = evidence.apply_retention(settings, s, now + timedelta(days=10))
        assert young.deleted == [] and young.kept_young == young.examined >= 3
        old = evidence.apply_retention(settings, s, now + timedelta(days=40))
        assert plain_sha in old.deleted and csam_sha in old.kept_held
        assert csam_sha not in old.deleted
    assert not evidence.blob_path(settings, plain_sha).exists()
    assert evidence.get(settings, csam_sha) == MATERIAL
    with registry.session() as s:
        cases.record_mandatory_report(s, case_id, "Police", "P-9", now + timedelta(days=50),
                                      "legal", settings=settings)
    with registry.session() as s:
        still = evidence.apply_retention(settings, s, now + timedelta(days=50 + 364))
        assert csam_sha in still.kept_held and still.deleted == []
        expired = evidence.apply_retention(settings, s, now + timedelta(days=50 + 366))
        assert csam_sha in expired.deleted
        from aupguard.store.audit import AuditEntry, verify

        deletions = s.query(AuditEntry).filter_by(action="evidence.delete").count()
        assert deletions == len(old.deleted) + len(expired.deleted)
        assert verify(s).ok
    assert (evidence.root(settings) / "retention.jsonl").read_text().count("\n") == deletions


def test_legal_hold_cannot_be_configured_below_a_year():
    with pytest.raises(ConfigError, match="legal_hold_days"):
        parse_settings({"cases": {"legal_hold_days": 30}})


def test_csam_export_withholds_material(lite_registry, settings, tmp_path):
    registry = lite_registry
    case_id, sha = _csam_case(registry, settings)
    with registry.session() as s:
        path = cases.export_case(s, settings, case_id, tmp_path / "csam.tar.gz", actor="legal")
    check = cases.verify_export(path, settings)
    assert check.ok, check.problems
    with tarfile.open(path) as tar:
        names = tar.getnames()
        blob = b"".join(tar.extractfile(m).read() for m in tar.getmembers())
    assert f"evidence/{sha}" not in names
    assert sha.encode() in blob and b"MARKER" not in blob


def test_repeat_infringer_strikes(registry, settings):
    settings.cases.strike_warning_threshold = 2
    settings.cases.strike_termination_threshold = 3
    with registry.session() as s:
        assert cases.strikes(s, "c1", settings=settings).level == "none"
    levels = []
    for i in range(3):
        add_incident(registry, clause="lawful.ip", client="c1", source="complaint",
                     at=T0 + timedelta(days=5 * i), offender=f"192.0.2.{10 + i}")
        with registry.session() as s:
            cases.ingest_incidents(s, settings)
            levels.append(cases.strikes(s, "c1", settings=settings, now=T0 + timedelta(days=20)))
    assert [x.active for x in levels] == [1, 2, 3]
    assert [x.level for x in levels] == ["none", "warning", "terminate"]
    assert "termination recommended" in levels[-1].recommendation
    add_incident(registry, clause="lawful.ip", client="c2", source="complaint")
    with registry.session() as s:
        cases.ingest_incidents(s, settings)
        # Per client, not per address: three different addresses of c1 count together; c2 apart.
        assert cases.strikes(s, "c2", settings=settings, now=T0 + timedelta(days=1)).active == 1
        summary = cases.strikes(s, "c1", settings=settings, now=T0 + timedelta(days=20))
        case_ids = [e.case_id for e in summary.entries]
        assert len(set(case_ids)) == 3  # 5 days apart: three cases, one ledger
        kinds = [t for c in case_ids for t in cases.timeline(s, c) if t.kind == "strikes"]
        assert [t.data["level"] for t in kinds] == ["warning", "terminate"]
        cases.withdraw_strike(s, summary.entries[0].id, "counter-notice upheld", "legal")
        after = cases.strikes(s, "c1", settings=settings, now=T0 + timedelta(days=20))
        assert (after.active, after.level) == (2, "warning")
        # The window forgets old strikes.
        late = cases.strikes(s, "c1", settings=settings, now=T0 + timedelta(days=372))
        assert late.active == 1
