"""Notice content: clause of the AUP version in force, evidence excerpts, redaction, templates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from aupguard.cases import evidence, notices
from aupguard.cases import service as cases
from aupguard.policy import clause_at, post_version
from aupguard.policy.catalogue import shipped_text

from .conftest import T0, add_incident

COMPLAINT = (b"From: Jane Reporter <jane.reporter@victim.example>\r\n"
             b"Phone: +44 20 7946 0958\r\n"
             b"Subject: spam from your network\r\n\r\n"
             b"We received unsolicited mail from 192.0.2.10 at 2026-10-05 12:01 UTC.\r\n"
             b"Contact me at jane.reporter@victim.example or +44 20 7946 0958.\r\n"
             b"\x1b[31mterminal escape\x07 and a NUL\x00 byte\r\n")


@pytest.fixture
def registry(lite_registry):
    """SQLite only here: these tests check content and formats, not the database."""
    return lite_registry


def _case(store, settings, **kw) -> int:
    add_incident(store, **kw)
    with store.session() as s:
        (case,) = cases.ingest_incidents(s, settings)
    return case.id


def test_notice_cites_clause_of_version_in_force_at_incident(registry, settings):
    old_words = "commercial messages over the Internet"
    new_words = "commercial messages of any kind over any network"
    with registry.session() as s:
        post_version(s, shipped_text().replace(old_words, new_words), "2027",
                     at=T0 + timedelta(days=1), actor="legal")
    early = _case(registry, settings, clause="mail.spam", client="c1", at=T0)
    late = _case(registry, settings, clause="mail.spam", client="c2", at=T0 + timedelta(days=2))
    with registry.session() as s:
        body_early = cases.preview_notice(s, settings, early).body
        body_late = cases.preview_notice(s, settings, late).body
        early_clause = clause_at(s, "mail.spam", T0)
    flat_early, flat_late = " ".join(body_early.split()), " ".join(body_late.split())
    assert " ".join(early_clause.text.split()) in flat_early
    assert old_words in flat_early and new_words not in flat_early
    assert new_words in flat_late and old_words not in flat_late
    assert "AUP version 2014" in flat_early and "AUP version 2027" in flat_late


def test_excerpt_redacts_complainant_and_keeps_offender(registry, settings):
    sha = evidence.put(settings, COMPLAINT, "complaint", {"format": "free-text"})
    case_id = _case(registry, settings, clause="mail.spam", source="complaint",
                    evidence=[{"sha256": sha, "kind": "complaint"}], offender="192.0.2.10")
    with registry.session() as s:
        preview = cases.preview_notice(s, settings, case_id)
    body = preview.body
    assert "> We received unsolicited mail from 192.0.2.10 at 2026-10-05 12:01 UTC." in body
    assert "jane.reporter" not in body and "7946" not in body and "Jane Reporter" not in body
    assert "> Contact me at [redacted e-mail] or [redacted phone]." in body
    assert "\x1b" not in body and "\x00" not in body and "\x07" not in body
    assert preview.subject.startswith(f"[case #{case_id}]")
    assert preview.reply_to.startswith(f"abuse+case-{case_id}-")
    assert "What you must do by" in body
    assert notices.redact("From: Jane <jane@victim.example>\nTel: 020 7946 0958\nsrc 192.0.2.10") \
        == "From: [redacted]\nTel: [redacted]\nsrc 192.0.2.10"
    settings.cases.redact_complainant = False
    with registry.session() as s:
        assert "jane.reporter@victim.example" in cases.preview_notice(s, settings, case_id).body


def test_flow_samples_quoted_and_excerpt_capped(registry, settings):
    samples = [{"src": "192.0.2.10", "dst": f"198.51.100.{i}", "dport": 22, "packets": i}
               for i in range(40)]
    case_id = _case(registry, settings, clause="security.scan", evidence=samples)
    with registry.session() as s:
        body = cases.preview_notice(s, settings, case_id).body
    assert "> src=192.0.2.10 dst=198.51.100.0 dport=22 packets=0" in body
    assert "dst=198.51.100.9 " in body and "dst=198.51.100.10 " not in body  # 10 samples quoted
    settings.cases.excerpt_chars = 300
    big = evidence.put(settings, b"A" * 5000, "complaint", {})
    case2 = _case(registry, settings, clause="security.scan", client="c2",
                  evidence=[{"sha256": big}], source="complaint")
    with registry.session() as s:
        body2 = cases.preview_notice(s, settings, case2).body
    assert "more characters]" in body2 and "A" * 301 not in body2


def test_template_dir_overrides_shipped_template(registry, settings, tmp_path):
    tdir = tmp_path / "templates"
    tdir.mkdir()
    (tdir / "security.flood.txt.j2").write_text(
        "Subject: custom {{ case.id }}\n\nHello {{ client_name }}: {{ clause.clause_id }} "
        "by {{ due_at | utc }}\n", encoding="utf-8")
    settings.cases.template_dir = str(tdir)
    case_id = _case(registry, settings, clause="security.flood")
    with registry.session() as s:
        preview = cases.preview_notice(s, settings, case_id)
        other = _case(registry, settings, clause="mail.relay", client="c2")
        shipped = cases.preview_notice(s, settings, other)
    assert preview.subject == f"custom {case_id}"
    assert preview.body.startswith("Hello Client One: security.flood by 20")
    assert "Close the open relay" in shipped.body  # clauses without an override keep the shipped one


@hsettings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_sanitise_and_redact_never_leak_control_chars(text):
    out = notices.quote(notices.redact(notices.sanitise(text, 200)))
    assert not any(ord(c) < 32 and c not in "\n\t" for c in out)
    assert all(line.startswith("> ") for line in out.splitlines())
    assert len(out) < 200 * 3 + 100


_LOCAL = st.from_regex(r"[a-z][a-z0-9._%+-]{0,20}", fullmatch=True)
_DOMAIN = st.from_regex(r"[a-z][a-z0-9-]{0,15}\.[a-z]{2,6}", fullmatch=True)


@hsettings(max_examples=200, deadline=None)
@given(st.text(max_size=80), _LOCAL, _DOMAIN, st.text(max_size=80))
def test_redact_removes_any_complainant_address(before, local, domain, after):
    address = f"{local}@{domain}"
    out = notices.redact(f"{before} {address} {after}")
    assert address not in out
    assert "[redacted" in out


def test_every_cases_setting_round_trips_through_config():
    from aupguard.cases.config import CaseSettings
    from aupguard.config import parse_settings

    defaults = CaseSettings().model_dump()
    parsed = parse_settings({"cases": defaults})
    assert parsed.cases.model_dump() == defaults
    assert parsed.cases.restricted_clauses == ["content.csam"]
    assert parsed.cases.ladders["content.csam"] == ["notice", "suspension", "termination"]


def test_bad_ladder_config_is_a_clear_error():
    from aupguard.config import parse_settings
    from aupguard.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown step"):
        parse_settings({"cases": {"ladders": {"mail.spam": ["notice", "nuke"]}}})
    with pytest.raises(ConfigError, match="port25-block or rate-limit"):
        parse_settings({"cases": {"default_restriction": "null-route"}})
