"""The README's first command, end to end: registry, attacks through softflowd into the
live collector and detector, sample complaints, cases — asserted on actual values."""

from __future__ import annotations

import shutil
import smtplib
import time
from importlib import resources
from pathlib import Path

import pytest

from aupguard.cli_support import AppState
from aupguard.config import Settings

pytestmark = pytest.mark.skipif(shutil.which("softflowd") is None and not Path("/usr/sbin/softflowd").exists(),
                                reason="Debian's softflowd is not installed (./scripts/install adds it)")


def test_demo_finds_every_attack_and_attributes_every_complaint(tmp_path):
    from aupguard.cases import service as cases
    from aupguard.demo.runner import run_demo
    from aupguard.incidents import list_incidents
    from aupguard.store.db import Store

    data = tmp_path / "demo"
    run_demo(AppState(None), serve=False, data_dir=data)
    store = Store(f"sqlite:///{data / 'state.db'}")
    with store.session() as s:
        incidents = list_incidents(s)
        flow = {(r.rule, r.client_id, r.clause_id): r for r in incidents if r.source == "flow"}
        complaints = [r for r in incidents if r.source == "complaint"]
        all_cases = cases.list_cases(s, restricted_ok=True)
    assert flow[("syn_flood_in", "acme", "security.flood")].victim == "198.51.100.140"
    assert flow[("reflection_victim", "acme", "security.flood")].victim == "198.51.100.150"
    assert flow[("horizontal_scan", "mailer", "security.scan")].offender == "203.0.113.40"
    assert flow[("spam_fanout", "mailer", "mail.spam")].offender == "203.0.113.44"
    assert flow[("brute_force", "shop", "security.cracking")].offender == "198.51.100.20"
    assert flow[("brute_force", "shop", "security.cracking")].victim == "45.1.2.3"
    # Ordinary traffic from the same hosts opened nothing else.
    assert {r.rule for r in incidents if r.source == "flow"} == {
        "syn_flood_in", "reflection_victim", "horizontal_scan", "spam_fanout", "brute_force"}
    by_offender = {r.offender.split(":")[0]: r for r in complaints}
    assert by_offender["198.51.100.23"].client_id == "shop" and by_offender["198.51.100.23"].clause_id == "mail.spam"
    assert by_offender["198.51.100.77"].client_id == "blog" and by_offender["198.51.100.77"].clause_id == "lawful.ip"
    assert by_offender["203.0.113.50"].client_id == "mailer"
    # Every attributed incident is in a case of its client and clause.
    assert {(c.client_id, c.clause_id) for c in all_cases} == {
        (r.client_id, r.clause_id) for r in incidents if r.client_id}


def test_run_receives_a_complaint_by_smtp_and_opens_a_case(tmp_path):
    from aupguard import runner
    from aupguard.cases import service as cases
    from aupguard.demo.runner import demo_settings, import_registry
    from aupguard.store.db import open_store

    from rich.console import Console

    settings = demo_settings(Settings(), tmp_path / "run")
    store = open_store(settings)
    import_registry(store, Console(quiet=True))
    services = runner.start(settings, store, flows=True, intake=True, desk_interval=0.5)
    try:
        raw = resources.files("aupguard.intake").joinpath("samples/arf-fbl.eml").read_bytes()
        with smtplib.SMTP("127.0.0.1", settings.intake.listen_port, timeout=10) as smtp:
            smtp.sendmail("fbl@mail.example", [settings.intake.addresses[0]], raw)
        deadline = time.monotonic() + 30
        found = []
        while time.monotonic() < deadline and not found:
            time.sleep(0.5)
            with store.session() as s:
                found = [c for c in cases.list_cases(s) if c.client_id == "shop"]
        assert found and found[0].clause_id == "mail.spam"
        assert services.collector.ports[0][0] == "127.0.0.1"

        # The client answers the notice at its per-case reply address: the answer threads
        # into the case through the same listener instead of becoming a complaint.
        case_id = found[0].id
        with store.session() as s:
            notice = cases.send_notice(s, settings, case_id, "analyst")
            reply_to = notice.headers["Reply-To"]
        assert "+case-" in reply_to
        answer = (f"From: abuse@shop.example\r\nTo: {reply_to}\r\nSubject: Re: case\r\n\r\n"
                  "We found the compromised form and closed it.\r\n").encode()
        with smtplib.SMTP("127.0.0.1", settings.intake.listen_port, timeout=10) as smtp:
            smtp.sendmail("abuse@shop.example", [reply_to], answer)
            with pytest.raises(smtplib.SMTPRecipientsRefused):  # a forged MAC is refused
                smtp.sendmail("x@evil.example", [reply_to.replace("+case-", "+case-9")], answer)
        deadline = time.monotonic() + 30
        threaded = []
        while time.monotonic() < deadline and not threaded:
            time.sleep(0.5)
            with store.session() as s:
                threaded = [e for e in cases.timeline(s, case_id)
                            if "compromised form" in (e.text + str(e.data))]
        assert threaded, "the client's answer did not reach the case timeline"
        assert services.intake.stats.get("case_replies") == 1
    finally:
        runner.stop(services)
