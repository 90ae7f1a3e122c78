"""The review web app: FastAPI, server-rendered pages with htmx, and a JSON API beside them.

``create_app(settings)`` builds the app; ``safeguard serve`` runs it with uvicorn. Pages live
in ``pages.py``, the API (``/api/v1/...``, described at ``/api/v1/openapi.json``) in
``api.py``; both call the same functions of ``review/``, ``triage/`` and ``accounts/``, and
both reach a case only through :func:`~safeguard.web.deps.case_access`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from safeguard import __version__
from safeguard.accounts.store import Accounts
from safeguard.config import Settings
from safeguard.errors import Forbidden, NotAuthenticated, NotFound, SafeguardError
from safeguard.web import api, pages
from safeguard.web.security import (
    BodyLimitMiddleware,
    ForwardedMiddleware,
    HeadersMiddleware,
)

HERE = Path(__file__).parent
HTMX = "vendor/htmx-2.0.11.min.js"


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="Safeguard review", version=__version__, docs_url=None,
                  redoc_url=None, openapi_url="/api/v1/openapi.json")
    app.state.settings = settings
    app.state.accounts = Accounts(settings)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(htmx=HTMX, version=__version__)
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)
    app.add_middleware(HeadersMiddleware)
    app.add_middleware(BodyLimitMiddleware, limit=settings.review.max_body_bytes)
    app.add_middleware(ForwardedMiddleware, trusted=settings.review.trusted_proxies)

    @app.exception_handler(NotAuthenticated)
    async def _login_first(request: Request, exc: NotAuthenticated) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "not signed in"}, status_code=401)
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.reason}, status_code=403)
        return templates.TemplateResponse(request, "error.html",
                                          {"status": 403, "message": exc.reason,
                                           "viewer": getattr(request.state, "viewer", None)},
                                          status_code=403)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, status_code=404)
        return templates.TemplateResponse(request, "error.html",
                                          {"status": 404, "message": str(exc)},
                                          status_code=404)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        message = invalid_request(exc)
        if request.url.path.startswith("/api/"):
            # the errors as FastAPI describes them, less the input (it may not be JSON: NaN)
            detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
                       "type": str(e.get("type", ""))} for e in exc.errors()]
            return JSONResponse({"error": message, "detail": detail}, status_code=422)
        return templates.TemplateResponse(request, "error.html",
                                          {"status": 422, "message": message},
                                          status_code=422)

    @app.exception_handler(SafeguardError)
    async def _refused(request: Request, exc: SafeguardError) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, status_code=400)
        return templates.TemplateResponse(request, "error.html",
                                          {"status": 400, "message": str(exc)},
                                          status_code=400)

    return app


def invalid_request(exc: RequestValidationError) -> str:
    """One line for a request that does not validate: its first error, where it is."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ())]
    where = f"{'.'.join(loc[1:]) or loc[0]} ({loc[0]})" if loc else "request"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    msg = " ".join(str(first.get("msg", "is not valid")).split())
    return f"invalid {where}: {msg}{more}"
