"""The app factory: settings and database in, a FastAPI app out, with sessions, CSRF, security headers, error
pages and every router (pages, and `/api/v1` from `api.py`) mounted in one place."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pulsecheck.errors import ConflictError, InputError, NotFoundError, RefusedError
from pulsecheck.web.auth import COOKIE, CsrfRefused, SessionCodec, SignInRequired, check_csrf, proxy_user
from pulsecheck.web.context import Web, page

if TYPE_CHECKING:
    from pulsecheck.config import Settings
    from pulsecheck.storage.db import Database

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def create_app(
    settings: Settings, database: Database | None = None, clock: Callable[[], datetime] | None = None
) -> FastAPI:
    """The web app over `database` (opened from `settings` if not given); `clock` defaults to the settings'."""
    from pulsecheck.app import open_database
    from pulsecheck.web import api, format, pages, signin_pages
    from pulsecheck.web.signer import server_signer

    database = database or open_database(settings)
    clock = clock or settings.now
    templates = Jinja2Templates(env=PageEnvironment(  # Starlette's own environment, autoescape on for .html
        loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=jinja2.select_autoescape()
    ))
    templates.env.filters["when"] = lambda value: format.when(value, settings.tz)
    templates.env.filters["money"] = format.money
    templates.env.filters["score"] = format.score
    templates.env.filters["number"] = format.number
    web = Web(settings, database, clock, templates, server_signer(settings, database, clock))
    codec = SessionCodec(_secret(settings, database), settings.web.session_idle.total_seconds())
    secure = (settings.web.base_url or "").startswith("https://")

    app = FastAPI(title="pulsecheck", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.web = web

    app.add_middleware(SessionsAndHeaders, codec=codec, settings=settings, clock=clock, secure=secure)
    _error_pages(app)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(signin_pages.router, dependencies=[Depends(check_csrf)])
    for router in pages.ROUTERS:
        app.include_router(router, dependencies=[Depends(check_csrf)])
    app.include_router(api.router, prefix="/api/v1")
    app.include_router(api.docs_router)  # /api/openapi.json and /api/docs
    return app


_DICT_ATTRIBUTES = frozenset(dir(dict))


class PageEnvironment(jinja2.Environment):
    """Jinja2's environment, whose `row.name` on a plain dict (most of what pages show) looks the key up first
    when `name` is no attribute of dicts: Jinja2 asks for the attribute first and only then for the key, and the
    AttributeError it meets on every such lookup was a third of the inbox's rendering time. The same value
    either way."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


class SessionsAndHeaders:
    """Every HTTP request's session (read from its signed cookie, written back refreshed on the answer), the
    trusted proxy's user, the security headers and, but for static files, `Cache-Control: no-store`. A plain ASGI
    middleware: Starlette's `@app.middleware("http")` ran each request through a task group and memory streams."""

    def __init__(
        self, app: ASGIApp, codec: SessionCodec, settings: Settings, clock: Callable[[], datetime], secure: bool
    ) -> None:
        self.app, self.codec, self.settings, self.clock, self.secure = app, codec, settings, clock, secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        request.state.web_session = self.codec.load(request.cookies.get(COOKIE), self.clock())
        request.state.proxy_user = proxy_user(
            request, self.settings.web.trusted_proxy_header, self.settings.web.trusted_proxies
        )
        static = request.url.path == "/static" or request.url.path.startswith("/static/")

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(raw=list(message["headers"]))
                headers.raw.append(self._cookie(self.codec.dump(request.state.web_session)))
                headers.update(SECURITY_HEADERS)
                if not static:
                    headers.setdefault("Cache-Control", "no-store")
                message["headers"] = headers.raw
            await send(message)

        await self.app(scope, receive, answer)

    def _cookie(self, value: str) -> tuple[bytes, bytes]:
        """The Set-Cookie header of the session cookie, as Starlette's `Response.set_cookie` writes it."""
        holder = Response()
        holder.set_cookie(COOKIE, value, httponly=True, samesite="lax", secure=self.secure, path="/")
        return holder.raw_headers[-1]


def _secret(settings: Settings, database: Database) -> str:
    """The cookie-signing secret: `[web] secret_file` (created 0600 on first use), else one kept in the database."""
    import secrets

    from sqlalchemy.exc import IntegrityError

    from pulsecheck.workflow.signin import stored_secret

    if settings.web.secret_file:
        path = Path(settings.web.secret_file).expanduser()
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        return path.read_text(encoding="utf-8").strip()
    try:
        with database.transaction() as session:
            return stored_secret(session, "session")
    except IntegrityError:  # another worker generated it at the same moment: take theirs
        with database.transaction() as session:
            return stored_secret(session, "session")


def _error_pages(app: FastAPI) -> None:
    """Errors of the services as pages with the CLI's message and the HTTP status that fits."""

    @app.exception_handler(SignInRequired)
    async def sign_in_first(request: Request, exc: SignInRequired) -> Response:
        target = "/signin?expired=1" if exc.expired else "/signin"
        if request.method == "GET" and not exc.expired:
            from urllib.parse import quote

            target += f"?next={quote(request.url.path)}"
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, exc: CsrfRefused) -> Response:
        return page(request, "error.html", 403, title="Refused",
                    message="the form was not sent from this site's page (missing or stale CSRF token): reload the "
                            "page and try again")

    statuses: list[tuple[type[Exception], int, str]] = [
        (ConflictError, 409, "Conflict"),
        (NotFoundError, 404, "Not found"),
        (InputError, 422, "Not accepted"),
        (RefusedError, 403, "Refused"),
    ]
    for kind, status, title in statuses:

        def handler(request: Request, exc: Exception, status: int = status, title: str = title) -> Response:
            from urllib.parse import urlsplit

            back = urlsplit(request.headers.get("referer") or "").path or None  # this site's path only
            return page(request, "error.html", status, title=title, message=str(exc), back=back)

        app.add_exception_handler(kind, handler)
