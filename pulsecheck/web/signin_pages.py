"""Sign in, sign out, and setting a password from a one-time link."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pulsecheck.web.auth import client_address, web_session
from pulsecheck.web.context import page, web_of

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only a path of this site (`/reviews/3`), never `//evil.example` or a full URL."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request, next: str | None = None, expired: int = 0) -> Response:
    message = "Your session expired: sign in again." if expired else None
    return page(request, "signin.html", next=_safe_next(next), message=message)


@router.post("/signin")
def signin(
    request: Request,
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    from pulsecheck.workflow.signin import SIGNIN_REFUSED, Limits, sign_in

    web = web_of(request)
    conf = web.settings.web
    limits = Limits(conf.max_failures_per_user, conf.max_failures_per_address, conf.failure_window)
    address = client_address(request, conf.trusted_proxies)
    with web.database.transaction() as session:
        user = sign_in(session, name[:100], password[:1000], address, web.now(), limits)
        signed = user.name if user is not None else None
    if signed is None:
        return page(request, "signin.html", 401, next=_safe_next(next), message=SIGNIN_REFUSED, name=name[:100])
    web_session(request).sign_in(signed)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/signout")
def signout(request: Request) -> Response:
    web_session(request).sign_out()
    return RedirectResponse("/signin", status_code=303)


@router.get("/set-password/{token}", response_class=HTMLResponse)
def set_password_form(request: Request, token: str) -> Response:
    from pulsecheck.workflow.signin import invite_user

    web = web_of(request)
    with web.database.session() as session:
        user = invite_user(session, token, web.now())
        name = user.name
    return page(request, "set_password.html", token=token, name=name)


@router.post("/set-password/{token}")
def set_password(
    request: Request,
    token: str,
    password: Annotated[str, Form()] = "",
    again: Annotated[str, Form()] = "",
) -> Response:
    from pulsecheck.errors import InputError
    from pulsecheck.storage import chain
    from pulsecheck.workflow.signin import redeem_invite

    web = web_of(request)
    if password != again:
        raise InputError("the two passwords differ")
    with web.database.transaction() as session:
        session.info[chain.ACTOR] = "set-password link via web"
        user = redeem_invite(session, token, password, web.now())
        name = user.name
    web_session(request).sign_in(name)
    return RedirectResponse("/", status_code=303)
