"""`/`: what waits for the signed-in user: drafts to fill, reviews to approve, escalations to acknowledge,
mitigation actions due."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from pulsecheck.web.auth import Principal, signed_in
from pulsecheck.web.context import page, web_of

router = APIRouter()
Me = Annotated[Principal, Depends(signed_in)]


@router.get("/", response_class=HTMLResponse)
def inbox(request: Request, me: Me) -> Response:
    from pulsecheck.web.inbox_query import my_plate

    web = web_of(request)
    with web.transaction(me) as (session, _user):
        plate = my_plate(session, me.name, web.now())
        drafts = [(r.id, r.account.name, r.due_at, r.priority) for r in plate.drafts]
        approvals = [(r.id, r.account.name, r.reviewer, r.due_at) for r in plate.approvals]
        escalations = [(e.id, e.account.name, e.severity, e.priority, e.reason, e.due_at) for e in plate.escalations]
        actions = [(r.id, a.description, a.due_date, r.account.name) for a, r in plate.actions]
        cycles = [(c.id, c.period, c.state, c.owner) for c in plate.cycles]
    return page(request, "inbox.html", drafts=drafts, approvals=approvals, escalations=escalations, actions=actions,
                cycles=cycles)
