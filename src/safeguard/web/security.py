"""Who is asking, and may they: sessions, CSRF, the response headers every page carries and
the request-body limit (case membership is :func:`~safeguard.web.deps.case_access`).

Every route depends on :func:`checked_viewer` (a case's routes through ``case_access``, which
depends on it), so an unauthenticated request never reaches a handler;
``tests/web/test_routes.py`` enumerates the app's routes and checks each one refuses without a
session, without membership and, for writes, without the CSRF token.
"""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import FormData
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from safeguard.accounts.store import Accounts, Session, User
from safeguard.errors import Forbidden, NotAuthenticated

SESSION_COOKIE = "sg_session"
LOGIN_CSRF_COOKIE = "sg_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"

#: what a browser may load and run: this app's own files, nothing inline, nothing else
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


@dataclass(frozen=True)
class Viewer:
    """The signed-in user of one request, and their session."""

    user: User
    session: Session

    @property
    def name(self) -> str:
        return str(self.user.name)


def _accounts(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


def client_address(request: Request) -> str:
    """The address a request came from: the peer's, or the client a trusted proxy names
    (:class:`ForwardedMiddleware`) — what sign-in limits count and the audit log records."""
    return request.client.host if request.client else "unknown"


def viewer(request: Request) -> Viewer:
    """The request's signed-in user (FastAPI dependency); checks CSRF on every write."""
    token = request.cookies.get(SESSION_COOKIE)
    session = _accounts(request).session(token) if token else None
    if session is None:
        raise NotAuthenticated()
    found = Viewer(session.user, session)
    request.state.viewer = found
    return found


async def checked_viewer(request: Request) -> Viewer:
    """:func:`viewer`, and for writes the session's CSRF token in the ``X-CSRF-Token``
    header or the ``csrf`` form field."""
    found = viewer(request)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and _is_form(request):
            form: FormData = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        if not sent or not secrets.compare_digest(sent, found.session.csrf):
            raise Forbidden("missing or wrong CSRF token")
    return found


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "")
    return kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


def secure_cookie(request: Request) -> bool:
    """Cookies are marked Secure when the app is served over TLS."""
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                        secure=secure_cookie(request), path="/")


class HeadersMiddleware(BaseHTTPMiddleware):
    """Security headers on every response; nothing a reviewer sees is cached."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ForwardedMiddleware:
    """Takes the client's address from ``X-Forwarded-For`` and the scheme from
    ``X-Forwarded-Proto`` only when the peer is one of ``[review] trusted_proxies``; from any
    other peer (by default every one) those headers are ignored, so a client cannot name its
    own address. The client is the nearest address in ``X-Forwarded-For``, read from the
    right, that is not a trusted proxy itself; an entry that is not an IP address ends the
    walk (the last address read before it stands)."""

    def __init__(self, app: ASGIApp, trusted: Sequence[str]) -> None:
        self.app = app
        self.trusted = tuple(ipaddress.ip_network(proxy, strict=False) for proxy in trusted)

    def _trusted(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in net for net in self.trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.trusted and scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            if peer and self._trusted(_ip(peer[0])):
                scope = dict(scope)
                headers = scope.get("headers") or []
                hops = [hop for name, value in headers if name == b"x-forwarded-for"
                        for hop in value.decode("latin-1").split(",")]
                client: IPAddress | None = None
                for hop in reversed(hops):
                    address = _ip(hop)
                    if address is None:
                        break
                    client = address
                    if not self._trusted(address):
                        break
                if client is not None:
                    scope["client"] = (str(client), 0)
                proto = dict(headers).get(b"x-forwarded-proto", b"").decode("latin-1").strip()
                if proto in ("http", "https"):
                    scope["scheme"] = proto if scope["type"] == "http" else (
                        "wss" if proto == "https" else "ws")
        await self.app(scope, receive, send)


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


class BodyLimitMiddleware:
    """Refuses request bodies above ``limit`` bytes with 413, before a handler reads them
    (declared by Content-Length or found while streaming)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(scope, receive, send, self.limit)
            return
        seen = 0
        started = refused = False

        async def limited() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # answer 413 now: the app turns a failed read into its own error (400),
                    # which guarded() then drops
                    if not started and not refused:
                        refused = True
                        await _too_large(scope, receive, send, self.limit)
                    raise _TooLarge()
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, limited, guarded)


class _TooLarge(Exception):
    pass


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    if scope["path"].startswith("/api/"):
        response: Response = JSONResponse(
            {"error": f"request body larger than {limit} bytes"}, status_code=413)
    else:
        response = PlainTextResponse(f"request body larger than {limit} bytes", 413)
    await response(scope, receive, send)
