"""`/`: what waits for the signed-in user, from the same inbox service as `pulsecheck inbox`: drafts to fill,
reviews to approve, escalations to acknowledge, mitigation actions due, cycle work and findings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from pulsecheck.web.auth import Principal, signed_in
from pulsecheck.web.context import page, web_of

router = APIRouter()
Me = Annotated[Principal, Depends(signed_in)]
SHOWN = 50  # rows per section; the heading gives the total


@router.get("/", response_class=HTMLResponse)
def inbox(request: Request, me: Me) -> Response:
    from pulsecheck.web.nav import nav_of
    from pulsecheck.workflow.inbox import inbox as find

    web = web_of(request)
    now = web.now()
    with web.database.session() as session:
        box = find(session, me.name, now, now.astimezone(web.settings.tz).date(), limit=SHOWN)
    sections = {section.key: section for section in box.sections}
    return page(request, "inbox.html", sections=sections, nav=nav_of(box))
