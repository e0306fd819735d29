"""Request-level plumbing: who is calling, may they, and the CSRF check.

``requires(perm)`` is the one gate every protected route goes through. The
dependency it returns carries ``.perm`` so tests (and ``route_perm``) can
enumerate every route of the app and check that none is left open.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute

from aupguard.web import auth
from aupguard.web.auth import Perm, Principal

SESSION_COOKIE = "aupguard_session"
LOGIN_CSRF_COOKIE = "aupguard_login"
FLASH_COOKIE = "aupguard_flash"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class NotAuthenticated(Exception):
    """No valid credentials: the API answers 401, the console redirects to /login."""

    def __init__(self, html: bool):
        self.html = html


class NotAllowed(Exception):
    """Valid credentials, but the role (or a missing CSRF token) forbids the request."""

    def __init__(self, message: str, html: bool):
        super().__init__(message)
        self.html = html


def resolve(request: Request) -> Principal | None:
    """The caller from a Bearer token, else from the console session cookie."""
    app_state = request.app.state
    header = request.headers.get("authorization", "")
    with app_state.store.session() as session:
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                return None
            return auth.principal_for_token(session, value.strip())
        return auth.principal_for_session(session, app_state.signer,
                                          request.cookies.get(SESSION_COOKIE))


def requires(perm: Perm, html: bool = False):
    """Dependency: the caller, who must hold `perm` (and a CSRF token for unsafe console calls)."""

    async def dependency(request: Request) -> Principal:
        who = await run_in_threadpool(resolve, request)
        if who is None:
            raise NotAuthenticated(html)
        if not who.holds(perm):
            raise NotAllowed(f"your role ({who.role}) may not do this: it needs "
                             f"{' or '.join(sorted(auth.PERM_ROLES[perm]))}", html)
        if request.method not in SAFE_METHODS and who.via == "session":
            submitted = request.headers.get(CSRF_HEADER)
            if submitted is None and "form" in request.headers.get("content-type", ""):
                submitted = (await request.form()).get("csrf")
            if not auth.csrf_ok(who, submitted if isinstance(submitted, str) else None):
                raise NotAllowed("the form's CSRF token is missing or stale: reload the page "
                                 "and try again", html)
        return who

    dependency.perm = perm  # type: ignore[attr-defined]
    dependency.html = html  # type: ignore[attr-defined]
    return dependency


def route_perm(route: BaseRoute) -> Perm | None:
    """The permission a route requires (None: the route is public)."""
    dependant: Any = getattr(route, "dependant", None)
    if dependant is None:
        return None
    stack = list(dependant.dependencies)
    while stack:
        dep = stack.pop()
        perm = getattr(dep.call, "perm", None)
        if perm is not None:
            return perm
        stack.extend(dep.dependencies)
    return None


def iter_routes(routes, prefix: str = ""):
    """(full path, route) for every route, flattening included routers.

    FastAPI >= 0.16x keeps an included router as one wrapper entry
    (``original_router`` + ``include_context.prefix``); older releases copy its
    routes into the app. Both shapes are walked here.
    """
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            context = getattr(route, "include_context", None)
            yield from iter_routes(original.routes, prefix + (getattr(context, "prefix", "") or ""))
            continue
        yield prefix + getattr(route, "path", ""), route
