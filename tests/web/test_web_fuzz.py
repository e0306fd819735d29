"""Hostile parameters never crash a route: every answer is a clear 2xx/3xx/4xx/503, never a 500."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.web.conftest import bearer

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
FUZZ = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(value=TEXT, at=TEXT)
def test_query_parameters(client, world, value, at):
    h = bearer(world, "legal")
    q, a = quote(value, safe=""), quote(at, safe="")
    for url in (f"/api/who?address={q}&at={a}", f"/api/cases?status={q}&clause_id={a}",
                f"/api/incidents?since={a}&client_id={q}", f"/api/policy/clauses/{q or 'x'}?at={a}",
                f"/api/accounting/asn-report?month={q}", f"/policy?clause_id={q}&at={a}",
                f"/cases?status={q}", f"/clients/{q or 'x'}"):
        response = client.get(url, headers=h)
        assert response.status_code < 500 or response.status_code == 503, (url, response.text[:200])


@FUZZ
@given(token=TEXT, text=TEXT)
def test_self_help_tokens_and_replies(client, token, text):
    path = "/self-help/" + quote(token or "t", safe="")
    assert client.get(path).status_code in (200, 404)
    assert client.post(path, data={"text": text or "x", "csrf": "x"}).status_code < 500


@FUZZ
@given(body=st.dictionaries(TEXT, st.one_of(TEXT, st.integers(), st.none(), st.lists(st.integers())),
                            max_size=4))
def test_json_bodies(client, world, body):
    h = bearer(world, "analyst")
    for path in (f"/api/cases/{world.case_id}/status", f"/api/cases/{world.case_id}/notes",
                 f"/api/cases/{world.case_id}/merge", "/api/intake/events/1/assign"):
        response = client.post(path, headers=h, json=body)
        assert response.status_code < 500, (path, body, response.text[:200])
