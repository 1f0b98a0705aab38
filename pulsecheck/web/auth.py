"""Who a request acts as: a signed session cookie (idle timeout, CSRF token) or, when configured, a trusted
proxy's user header. `signed_in` is the FastAPI dependency of every page; a token dependency for `/api/v1` sits
beside it and returns the same `Principal`."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import Request
from itsdangerous import BadSignature, URLSafeSerializer

COOKIE = "pulsecheck_session"
CSRF_FIELD = "csrf"


@dataclass(frozen=True)
class Principal:
    """The authenticated user of a request and how they authenticated (`web` session id, `proxy`, or a token)."""

    name: str
    via: str  # "web" | "proxy" (and "token" for the API)
    session_id: str

    @property
    def label(self) -> str:
        """What the audit chain records as the actor: `maria via web session 3f2a9c1e`."""
        return f"{self.name} via {self.via} session {self.session_id}"


class SignInRequired(Exception):
    """No signed-in user: pages redirect to the sign-in form (saying so when a session expired)."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("sign in required")
        self.expired = expired


class CsrfRefused(Exception):
    """A form posted without this session's CSRF token (403)."""


@dataclass
class WebSession:
    """The cookie's content: the signed-in user (if any), the session id, the CSRF token, when last seen."""

    user: str | None = None
    sid: str = field(default_factory=lambda: secrets.token_hex(8))
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    seen: float = 0.0
    expired: bool = False  # a signed-in session timed out on this request (not stored)

    def dump(self) -> dict[str, Any]:
        return {"u": self.user, "s": self.sid, "c": self.csrf, "t": self.seen}

    def sign_in(self, name: str) -> None:
        """A fresh id and CSRF token for a new sign-in (no fixation of an earlier anonymous session)."""
        self.user, self.sid, self.csrf = name, secrets.token_hex(8), secrets.token_urlsafe(24)

    def sign_out(self) -> None:
        self.user, self.sid, self.csrf = None, secrets.token_hex(8), secrets.token_urlsafe(24)


class SessionCodec:
    """Signs and reads session cookies with the server's secret; a session idle longer than `idle_seconds` is
    signed out."""

    def __init__(self, secret: str, idle_seconds: float) -> None:
        self.serializer = URLSafeSerializer(secret, salt="pulsecheck-session")
        self.idle = idle_seconds

    def load(self, cookie: str | None, now: datetime) -> WebSession:
        if not cookie:
            return WebSession(seen=now.timestamp())
        try:
            data = self.serializer.loads(cookie)
            session = WebSession(data.get("u"), str(data["s"]), str(data["c"]), float(data["t"]))
        except (BadSignature, KeyError, TypeError, ValueError, AttributeError):
            return WebSession(seen=now.timestamp())
        if now.timestamp() - session.seen > self.idle:
            expired = session.user is not None
            session = WebSession(seen=now.timestamp())
            session.expired = expired
        session.seen = now.timestamp()
        return session

    def dump(self, session: WebSession) -> str:
        return self.serializer.dumps(session.dump())


def web_session(request: Request) -> WebSession:
    """The request's session (the middleware loaded it)."""
    found: WebSession = request.state.web_session
    return found


def _trusted(request: Request, trusted: list[str]) -> bool:
    """Whether the request comes straight from one of the `trusted` proxy addresses or networks."""
    if request.client is None or not trusted:
        return False
    try:
        address = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in trusted)


def client_address(request: Request, trusted: list[str]) -> str:
    """The client's address for sign-in limits: from a trusted proxy, the last X-Forwarded-For hop (the one that
    proxy added), so that everyone behind it is not counted as one address."""
    peer = request.client.host if request.client else "-"
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and _trusted(request, trusted):
        return forwarded.split(",")[-1].strip() or peer
    return peer


def proxy_user(request: Request, header: str | None, trusted: list[str]) -> str | None:
    """The user a trusted reverse proxy names in `header`, only when the request comes from `trusted`."""
    value = request.headers.get(header) if header else None
    if not value or not _trusted(request, trusted):
        return None
    return value.strip()


async def signed_in(request: Request) -> Principal:
    """The FastAPI dependency of every page: the signed-in user, or SignInRequired."""
    proxied: str | None = getattr(request.state, "proxy_user", None)
    if proxied:
        return Principal(proxied, "proxy", "proxy")
    session = web_session(request)
    if session.user is None:
        raise SignInRequired(expired=session.expired)
    return Principal(session.user, "web", session.sid)


async def check_csrf(request: Request) -> None:
    """Refuse (403) a form post whose `csrf` field is not this session's token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    form = await request.form()
    given = form.get(CSRF_FIELD)
    if not isinstance(given, str) or not secrets.compare_digest(given, web_session(request).csrf):
        raise CsrfRefused()
