"""End to end in a real browser: Debian's Chromium driven by Playwright.

A complaint arrives (the project's own hostile sample, and a shared real-world
sample), intake attributes it, cases opens a case; an analyst logs in, opens
the case, sends the notice, escalates, and sees the status change. Markup in
the complaint must show as text and never run. Screenshots: test-artifacts/web/.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from tests.web.live import live_server
from tests.web.scenario import PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"{CHROMIUM} is absent (install Debian's chromium: scripts/install)"),
    pytest.mark.timeout(180),
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (pip) not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def desk(tmp_path):
    """A fresh data directory and store with a reseller, a client and an analyst."""
    from aupguard.config import Settings
    from aupguard.registry import Client, add_client
    from aupguard.store.db import Store
    from aupguard.web import auth

    settings = Settings(data_dir=tmp_path / "data")
    store = Store(settings.database_url)
    store.migrate()
    with store.session() as session:
        add_client(session, Client(id="resel", name="Reseller Ltd", abuse_email="abuse@resel.test"))
        add_client(session, Client(id="acme", name="ACME Hosting", parent_id="resel",
                                   abuse_email="abuse@acme.test"))
        auth.add_user(session, "alice", "analyst", PASSWORD)
    yield settings, store
    store.dispose()


def _complaint_case(settings, store, raw: bytes) -> int:
    """Intake -> incident -> case, the production path; the complaint's address is acme's."""
    from aupguard.cases import service as cases
    from aupguard.intake.pipeline import Intake
    from aupguard.registry import add_assignment

    intake = Intake(settings, store)
    prepared = intake.prepare(raw, source="test")
    assert prepared.events, "the sample complaint yields no event"
    event = prepared.events[0]
    with store.session() as session:
        add_assignment(session, "acme", f"{event.ip}/32", valid_from=event.time - timedelta(days=1))
    intake.refresh_index()
    with store.session() as session:
        intake.commit(session, [prepared])
        opened = cases.ingest_incidents(session, settings)
    assert len(opened) == 1, opened
    return opened[0].id


def _work_the_case(browser, base: str, case_id: int, shots: str) -> dict:
    """Log in, open the case, send the notice, escalate; returns what the page showed."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    dialogs: list[tuple[str, str]] = []

    def on_dialog(dialog):
        dialogs.append((dialog.type, dialog.message))
        dialog.accept() if dialog.type == "confirm" else dialog.dismiss()

    page.on("dialog", on_dialog)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.set_default_timeout(15_000)

    page.goto(f"{base}/cases/{case_id}")
    assert page.url.startswith(f"{base}/login?next=")  # not logged in yet
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/cases/{case_id}")
    seen = {"title": page.title(), "status0": page.inner_text("#case-status"),
            "excerpts": page.locator("pre.excerpt").all_inner_texts(),
            "notice": page.inner_text("#notice-body"),
            "scripts_in_main": page.evaluate("document.querySelectorAll('main script').length"),
            "images_in_main": page.evaluate("document.querySelectorAll('main img').length")}
    page.screenshot(path=str(ARTIFACTS / f"{shots}-1-case.png"), full_page=True)

    expect = pytest.importorskip("playwright.sync_api").expect
    with page.expect_navigation():
        page.click("#send-notice")
    # Wait on the new page's text, never on an element the old page also had.
    expect(page.locator("p.flash")).to_have_text("Notice queued for delivery.")
    seen["flash1"] = page.inner_text("p.flash")
    seen["status1"] = page.inner_text("#case-status")
    page.screenshot(path=str(ARTIFACTS / f"{shots}-2-notified.png"), full_page=True)

    with page.expect_navigation():
        page.click("#escalate")
    expect(page.locator("p.flash")).to_have_text("Case escalated.")
    seen["flash2"] = page.inner_text("p.flash")
    seen["status2"] = page.inner_text("#case-status")
    seen["timeline"] = page.inner_text("#timeline")
    page.screenshot(path=str(ARTIFACTS / f"{shots}-3-escalated.png"), full_page=True)

    page.goto(f"{base}/")
    seen["dashboard_svgs"] = page.locator("svg.chart").count()
    page.screenshot(path=str(ARTIFACTS / f"{shots}-4-dashboard.png"), full_page=True)
    context.close()
    seen["dialogs"], seen["requests"] = dialogs, requests
    return seen


def _outbox(store):
    from sqlalchemy import select

    from aupguard.store.outbox import OutboxMessage

    with store.session() as session:
        return [(m.kind, list(m.to_addrs), m.ref, m.headers.get("Cc", ""))
                for m in session.execute(select(OutboxMessage).where(OutboxMessage.kind == "notice")
                                         .order_by(OutboxMessage.id)).scalars()]


def test_hostile_complaint_to_notice_and_escalation(browser, desk):
    from aupguard.intake import samples
    from aupguard.web.app import create_app

    settings, store = desk
    raw = (Path(samples.__file__).parent / "hostile.eml").read_bytes()
    assert b"<script>document.location" in raw
    case_id = _complaint_case(settings, store, raw)
    with live_server(create_app(settings, store)) as base:
        seen = _work_the_case(browser, base, case_id, "hostile")

    # The markup arrived as text, and nothing of it ran or loaded.
    assert any('<script>document.location="http://evil.example' in t for t in seen["excerpts"])
    assert seen["scripts_in_main"] == 0 and seen["images_in_main"] == 0
    assert seen["title"] == f"Case #{case_id} · aupguard"
    assert [d for d in seen["dialogs"] if d[0] != "confirm"] == []
    assert all(url.startswith(base) for url in seen["requests"]), "a request left the app"
    assert "ACME Hosting" in seen["notice"] and "security.scan" in seen["notice"]
    # Notice, then escalation: the status follows, and both mails are queued.
    assert seen["status0"] == "open"
    assert seen["flash1"] == "Notice queued for delivery." and seen["status1"] == "notified"
    assert seen["flash2"] == "Case escalated." and seen["status2"] == "escalated"
    assert "step 2/5: warning" in seen["timeline"]
    assert [d for d in seen["dialogs"] if d[0] == "confirm"] == [
        ("confirm", "Send the notice shown below to the client?"),
        ("confirm", "Take the next escalation step now?")]
    assert seen["dashboard_svgs"] == 3
    mails = _outbox(store)
    assert [m[0] for m in mails] == ["notice", "notice"]
    assert all(m[1] == ["abuse@acme.test"] and m[2] == f"case:{case_id}" for m in mails)
    assert all("abuse@resel.test" in m[3] for m in mails)  # up the reseller chain
    assert (ARTIFACTS / "hostile-3-escalated.png").stat().st_size > 10_000


@pytest.mark.shared
def test_shared_sample_complaint_to_notice(browser, desk, shared_data):
    from aupguard.web.app import create_app

    settings, store = desk
    raw = (shared_data / "abuse-reports" / "xarf_v02" / "Blocklistde_Example_1.eml").read_bytes()
    case_id = _complaint_case(settings, store, raw)
    with live_server(create_app(settings, store)) as base:
        seen = _work_the_case(browser, base, case_id, "shared-xarf")
    assert seen["status1"] == "notified" and seen["status2"] == "escalated"
    assert "10.0.2.150" in seen["notice"]
    assert [m[0] for m in _outbox(store)] == ["notice", "notice"]
