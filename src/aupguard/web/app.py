"""The FastAPI application: REST API, console, OpenAPI docs, metrics.

``create_app(settings, store)`` builds it; ``serve(settings, store, host, port)``
runs it with uvicorn (used by `aupguard web`, `aupguard run` and `aupguard demo`).
Nothing is loaded from a CDN: Swagger UI's assets come from the installed
``swagger-ui-py`` package and the console's CSS/JS from ``web/static``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.exceptions import HTTPException as StarletteHTTPException

from aupguard import __version__
from aupguard.errors import AupguardError
from aupguard.web import api, console
from aupguard.web.auth import Perm, Principal, Signer, load_secret
from aupguard.web.data import Forbidden, NotFound
from aupguard.web.deps import NotAllowed, NotAuthenticated, requires
from aupguard.web.metrics import Metrics
from aupguard.web.stages import StageUnavailable

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
# Public paths: everything else needs credentials (tests/web check every route).
PUBLIC_PATHS = {"/login", "/healthz", "/self-help/{token}"}
PUBLIC_PREFIXES = ("/static",)

# No inline script anywhere; inline style only for Swagger UI's generated markup.
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
CSP_DOCS = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


def swagger_static_dir() -> Path | None:
    try:
        import swagger_ui
    except ImportError:
        return None
    path = Path(swagger_ui.__file__).resolve().parent / "static"
    return path if (path / "swagger-ui-bundle.js").exists() else None


def _templates() -> Jinja2Templates:
    # autoescape=True for every template, not only *.html: complaint text is hostile.
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["short"] = lambda v, n=80: (str(v)[: n - 1] + "…") if v and len(str(v)) > n else v
    env.filters["when"] = readable_time
    env.globals["version"] = __version__
    return Jinja2Templates(env=env)


_ISO_UTC = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?(\+00:00|Z)$")


def readable_time(value):
    """'2026-11-29T16:46:38.594281+00:00' -> '2026-11-29 16:46:38 UTC'; anything else as is."""
    if isinstance(value, str):
        match = _ISO_UTC.match(value)
        if match:
            return f"{match.group(1)} {match.group(2)} UTC"
    return value


def create_app(settings, store) -> FastAPI:
    """The whole web face of aupguard over one settings object and one store."""
    app = FastAPI(title="aupguard", version=__version__,
                  description="Acceptable-use enforcement: cases, incidents, complaints, clients.",
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.store = store
    app.state.signer = Signer(load_secret(settings), settings.web.session_hours * 3600)
    app.state.templates = _templates()
    app.state.login_failures = {}
    app.state.flow_samples = []  # last two collector readings, for the live flow rate
    app.state.metrics = Metrics(store)

    swagger = swagger_static_dir()
    if swagger is not None:  # before /static, which would otherwise shadow it
        app.mount("/static/swagger", StaticFiles(directory=swagger), name="swagger")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(api.router)
    app.include_router(console.router)
    _with_bearer_scheme(app)
    _docs_routes(app, swagger is not None)
    _metrics_route(app)
    _error_handlers(app)

    @app.middleware("http")
    async def headers_and_metrics(request: Request, call_next):
        response = await call_next(request)
        path = request.url.path
        response.headers["Content-Security-Policy"] = CSP_DOCS if path == "/docs" else CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        # Self-help links carry their token in the URL: never leak it in a Referer.
        response.headers["Referrer-Policy"] = "no-referrer"
        if not path.startswith("/static"):
            response.headers.setdefault("Cache-Control", "no-store")
        route = request.scope.get("route")
        app.state.metrics.observe(request.method, getattr(route, "path", "unmatched"),
                                  response.status_code)
        return response

    return app


def _with_bearer_scheme(app: FastAPI) -> None:
    """Declare Bearer auth in the OpenAPI document (Swagger UI's Authorize button)."""
    from fastapi.openapi.utils import get_openapi

    def schema() -> dict:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version,
                              description=app.description, routes=app.routes)
            doc.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "aupguard tokens create NAME"}}
            doc["security"] = [{"bearer": []}]
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = schema  # type: ignore[method-assign]


VIEW_API = Depends(requires(Perm.VIEW))
VIEW_PAGE = Depends(requires(Perm.VIEW, html=True))
METRICS = Depends(requires(Perm.METRICS))


def _docs_routes(app: FastAPI, have_swagger: bool) -> None:
    @app.get("/openapi.json", include_in_schema=False)
    def openapi(who: Principal = VIEW_API) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs(request: Request, who: Principal = VIEW_PAGE):
        return app.state.templates.TemplateResponse(
            request, "docs.html", {"have_swagger": have_swagger, "who": who,
                                   "routes": _api_summary(app)})


def _api_summary(app: FastAPI) -> list[dict]:
    """Endpoint list for the docs page (shown too when Swagger UI's assets are absent)."""
    out = []
    for path, methods in app.openapi().get("paths", {}).items():
        for method, spec in methods.items():
            out.append({"method": method.upper(), "path": path,
                        "summary": spec.get("summary", "")})
    return out


def _metrics_route(app: FastAPI) -> None:
    @app.get("/metrics", include_in_schema=False)
    def metrics(who: Principal = METRICS) -> Response:
        body, content_type = app.state.metrics.render()
        return Response(body, media_type=content_type)


def _is_api(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api") or path in ("/openapi.json", "/metrics")


def _error_page(request: Request, status: int, message: str) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": message}, status_code=status)
    return request.app.state.templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message, "who": None, "nav": [],
                                "flash": None, "csrf": ""}, status_code=status)


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, exc: NotAuthenticated):
        if exc.html and not _is_api(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            from urllib.parse import quote
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return JSONResponse({"detail": "authentication required: send 'Authorization: Bearer "
                                       "<token>' (aupguard tokens create) or log in"},
                            status_code=401, headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(NotAllowed)
    async def not_allowed(request: Request, exc: NotAllowed):
        return _error_page(request, 403, str(exc))

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden):
        return _error_page(request, 403, str(exc))

    @app.exception_handler(PermissionError)
    async def permission(request: Request, exc: PermissionError):
        return _error_page(request, 403, str(exc) or "not allowed")

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound):
        return _error_page(request, 404, str(exc))

    @app.exception_handler(LookupError)
    async def lookup(request: Request, exc: LookupError):
        return _error_page(request, 404, str(exc).strip("'\"") or "not found")

    @app.exception_handler(StageUnavailable)
    async def unavailable(request: Request, exc: StageUnavailable):
        return _error_page(request, 503, str(exc))

    @app.exception_handler(AupguardError)
    async def user_error(request: Request, exc: AupguardError):
        return _error_page(request, 400, str(exc))

    @app.exception_handler(ValueError)
    async def value_error(request: Request, exc: ValueError):
        return _error_page(request, 409, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if _is_api(request) or exc.status_code < 400:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                                headers=getattr(exc, "headers", None))
        return _error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        if _is_api(request):
            return JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}"
                             for e in exc.errors())
        return _error_page(request, 422, f"the form is incomplete or wrong: {problems}")


def serve(settings, store, host: str | None = None, port: int | None = None) -> None:
    """Run the console and API with uvicorn until interrupted."""
    import uvicorn

    app = create_app(settings, store)
    uvicorn.run(app, host=host or settings.web.host, port=port or settings.web.port,
                log_level="info", proxy_headers=False, server_header=False)
