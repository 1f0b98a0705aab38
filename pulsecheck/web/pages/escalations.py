"""`/escalations`: filters, acknowledge one or many, resolve (the CLI's services, as the signed-in user)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pulsecheck.errors import InputError
from pulsecheck.web.auth import Principal, signed_in
from pulsecheck.web.context import page, web_of

router = APIRouter()
Me = Annotated[Principal, Depends(signed_in)]
STATUSES = ("open", "acknowledged", "resolved")
PAGE_SIZE = 100


@router.get("/escalations", response_class=HTMLResponse)
def listing(
    request: Request, me: Me, status: str = "", owner: str = "", severity: str = "", mine: int = 0,
    page_number: Annotated[int, Query(alias="page")] = 1, ack: int = 0,
) -> Response:
    """`?ack=ID` (a notification's link) opens the page with that escalation chosen for acknowledging."""
    from pulsecheck.workflow.escalations import escalation_dict, list_escalations

    web = web_of(request)
    owner = me.name if mine else owner.strip()
    with web.transaction(me) as (session, _user):
        rows = list_escalations(session, open_only=status in ("", "open", "acknowledged"))
        items = [escalation_dict(e, web.now()) | {"account_name": e.account.name} for e in rows]
    items = [
        item for item in items
        if (not status or item["status"] == status) and (not owner or item["owner"] == owner)
        and (not severity or item["severity"] == severity)
    ]
    pages = max(1, -(-len(items) // PAGE_SIZE))
    chosen = next((index for index, item in enumerate(items) if item["id"] == ack), None)
    if chosen is not None:
        page_number = chosen // PAGE_SIZE + 1
    page_number = min(max(1, page_number), pages)
    shown = items[(page_number - 1) * PAGE_SIZE: page_number * PAGE_SIZE]
    return page(request, "escalations.html", items=shown, total=len(items), status=status, owner=owner,
                severity=severity, statuses=STATUSES, mine=mine, page_number=page_number, pages=pages, ack=ack)


@router.post("/escalations/ack")
def ack(request: Request, me: Me, ids: Annotated[list[int] | None, Form()] = None) -> Response:
    """Acknowledge every chosen escalation, all or none (one transaction)."""
    from pulsecheck.workflow.escalations import acknowledge

    if not ids:
        raise InputError("choose at least one escalation to acknowledge")
    web = web_of(request)
    with web.transaction(me) as (session, user):
        for escalation_id in ids:
            acknowledge(session, escalation_id, user, web.now())
    return RedirectResponse("/escalations", status_code=303)


@router.post("/escalations/{escalation_id}/resolve")
def resolve(request: Request, escalation_id: int, me: Me) -> Response:
    from pulsecheck.workflow.escalations import resolve as resolve_it

    web = web_of(request)
    with web.transaction(me) as (session, user):
        resolve_it(session, escalation_id, user, web.now())
    return RedirectResponse("/escalations", status_code=303)
