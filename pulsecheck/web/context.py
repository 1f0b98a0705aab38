"""What every route shares: the settings, the database, the clock, the templates, and the transaction that acts
as the signed-in user (audited `via web`, sign-offs countersigned by the server key)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from pulsecheck.web.auth import CSRF_FIELD, Principal, web_session

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates
    from sqlalchemy.orm import Session

    from pulsecheck.config import Settings
    from pulsecheck.storage.chain import Signer
    from pulsecheck.storage.db import Database
    from pulsecheck.storage.models import User


@dataclass
class Web:
    """The app's shared state (`app.state.web`)."""

    settings: Settings
    database: Database
    clock: Callable[[], datetime]
    templates: Jinja2Templates
    signer: Signer | None

    def now(self) -> datetime:
        return self.clock()

    @contextmanager
    def transaction(self, who: Principal) -> Iterator[tuple[Session, User]]:
        """A transaction acting as `who`: their user row, the audit chain's actor `NAME via web session ID`."""
        from pulsecheck.storage import chain
        from pulsecheck.workflow.users import get_user

        with self.database.transaction() as session:
            session.info[chain.ACTOR] = who.label
            if self.signer is not None:
                session.info[chain.SIGNER] = self.signer
            yield session, get_user(session, who.name)


def web_of(request: Request) -> Web:
    found: Web = request.app.state.web
    return found


def page(request: Request, template: str, http_status: int = 200, **values: Any) -> HTMLResponse:
    """Render `template` with the request's CSRF token, the signed-in user and the nav counts (read here unless
    `values` bring them as `nav`)."""
    from pulsecheck.web.nav import nav_counts

    web = web_of(request)
    session = web_session(request)
    user = getattr(request.state, "proxy_user", None) or session.user
    context = {
        "request": request,
        "csrf_field": CSRF_FIELD,
        "csrf": session.csrf,
        "me": user,
        "tz": web.settings.tz,
        **values,
    }
    if "nav" not in values:
        context["nav"] = nav_counts(web, user) if user else None
    return web.templates.TemplateResponse(request, template, context, status_code=http_status)
