"""Every route of the app checks its credentials: none is open by accident.

The test walks app.routes, so a route added later without a role check fails
here. Public on purpose: /login, /healthz, the client's self-help link, /static.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount

from aupguard.web.app import PUBLIC_PATHS, PUBLIC_PREFIXES
from aupguard.web.auth import PERM_ROLES, Perm
from aupguard.web.deps import iter_routes, route_perm
from tests.web.conftest import bearer, login
from tests.web.scenario import ROLES


def _routes(app) -> list[tuple[str, APIRoute, str]]:
    out = []
    for path, route in iter_routes(app.routes):
        if isinstance(route, Mount):
            assert path.startswith(PUBLIC_PREFIXES), f"unexpected mount {path}"
            continue
        assert isinstance(route, APIRoute), f"unexpected route type {route!r}"
        for method in sorted(route.methods - {"HEAD"}):
            out.append((path, route, method))
    return out


def _url(path: str, world) -> str:
    values = {"case_id": world.case_id, "incident_id": world.incident_id, "client_id": "acme",
              "clause_id": "lawful.exploit", "event_id": 1, "token": "x", "mitigation_id": 1, "order_id": 1, "strike_id": 1}
    return re.sub(r"{(\w+)}", lambda m: str(values[m.group(1)]), path)


def _holder(perm: Perm) -> str:
    return next(r for r in ("legal", "admin", "analyst", "read-only") if r in PERM_ROLES[perm])


def test_every_route_is_public_by_design_or_names_a_permission(app):
    routes = _routes(app)
    assert len(routes) > 40  # the API and console, not an empty app
    public = {path for path, route, _ in routes if route_perm(route) is None}
    assert public == PUBLIC_PATHS


def test_every_route_rejects_missing_credentials(app, client, world):
    checked = 0
    for path, route, method in _routes(app):
        if route_perm(route) is None:
            continue
        response = client.request(method, _url(path, world), follow_redirects=False)
        if path.startswith("/api") or path in ("/openapi.json", "/metrics"):
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.headers["www-authenticate"] == "Bearer"
        else:
            assert response.status_code == 303, (method, path, response.status_code)
            assert response.headers["location"].startswith("/login?next=")
        checked += 1
    assert checked > 40


def test_every_route_rejects_bad_tokens_and_forged_cookies(app, client, world):
    forged = {"Authorization": "Bearer aupg_" + "A" * 43}
    for path, route, method in _routes(app):
        if route_perm(route) is None:
            continue
        url = _url(path, world)
        for headers, cookies in ((forged, {}), ({"Authorization": "Basic YTpi"}, {}),
                                 ({}, {"aupguard_session": "eyJ1IjoiYWRtaW4xIn0.forged.sig"})):
            client.cookies.clear()
            for k, v in cookies.items():
                client.cookies.set(k, v)
            response = client.request(method, url, headers=headers, follow_redirects=False)
            assert response.status_code in (401, 303), (method, path, headers, cookies)


def test_every_route_rejects_wrong_roles(app, client, world):
    """Each role outside a route's permission gets 403, by token and by console session."""
    denied = 0
    for path, route, method in _routes(app):
        perm = route_perm(route)
        if perm is None:
            continue
        url = _url(path, world)
        for role in ROLES:
            if role in PERM_ROLES[perm] or perm is Perm.METRICS:
                continue
            response = client.request(method, url, headers=bearer(world, role),
                                      follow_redirects=False)
            assert response.status_code == 403, (method, path, role, response.status_code)
            denied += 1
    # By console session too (the cookie path has its own code): read-only on every change.
    login(client, world.users["read-only"])
    for path, route, method in _routes(app):
        perm = route_perm(route)
        if perm is None or "read-only" in PERM_ROLES[perm]:
            continue
        response = client.request(method, _url(path, world), follow_redirects=False)
        assert response.status_code == 403, (method, path, response.status_code)
        denied += 1
    assert denied > 30


def test_metrics_wants_admin_or_a_token(client, world):
    login(client, world.users["analyst"])
    assert client.get("/metrics").status_code == 403
    client.cookies.clear()
    scraped = client.get("/metrics", headers=bearer(world, "read-only"))
    assert scraped.status_code == 200
    assert "aupguard_http_requests_total" in scraped.text
    assert re.search(r'aupguard_incidents\{status="active"\} 2\.0', scraped.text)
    login(client, world.users["admin"])
    assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/login", "/static/console.css",
                                  "/static/swagger/swagger-ui-bundle.js"])
def test_public_paths_need_no_credentials(client, path):
    assert client.get(path).status_code == 200


def test_routes_answer_their_rightful_role(app, client, world):
    """The gate is not a wall: a role holding the permission gets past it on every GET."""
    for path, route, method in _routes(app):
        perm = route_perm(route)
        if perm is None or method != "GET":
            continue
        response = client.get(_url(path, world), headers=bearer(world, _holder(perm)),
                              follow_redirects=False)
        assert response.status_code not in (401, 403), (path, response.status_code,
                                                         response.text[:300])
