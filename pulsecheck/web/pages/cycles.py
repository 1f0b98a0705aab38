"""`/cycles` and `/cycles/{id}`: the portfolio review cycles, their steps, findings and decisions; submit,
approve and reject for those the permission table allows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pulsecheck.errors import InputError
from pulsecheck.web.auth import Principal, signed_in
from pulsecheck.web.context import page, web_of

router = APIRouter()
Me = Annotated[Principal, Depends(signed_in)]


@router.get("/cycles", response_class=HTMLResponse)
def listing(request: Request, me: Me) -> Response:
    from pulsecheck.workflow.cycles import list_cycles, summary_dict

    web = web_of(request)
    with web.transaction(me) as (session, _user):
        cycles = [summary_dict(session, cycle) for cycle in list_cycles(session)]
    return page(request, "cycles.html", cycles=cycles)


@router.get("/cycles/{cycle_id}", response_class=HTMLResponse)
def show(request: Request, cycle_id: int, me: Me) -> Response:
    from pulsecheck.workflow.cycles import cycle_dict, get_cycle

    web = web_of(request)
    with web.transaction(me) as (session, _user):
        cycle = get_cycle(session, cycle_id)
        data = cycle_dict(session, cycle)
        version = cycle.version_id
    from pulsecheck.states.cycle import STEPS

    return page(request, "cycle.html", cycle=data, version=version, steps=STEPS)


@router.post("/cycles/{cycle_id}/step")
def step(
    request: Request, cycle_id: int, me: Me, step: Annotated[str, Form()],
    note: Annotated[str, Form()] = "", evidence: Annotated[str, Form()] = "",
) -> Response:
    """Complete one SOP step as the signed-in user; evidence from the web is a link (a file path would name a file
    on the server)."""
    from pulsecheck.workflow.cycles import CycleSettings, run_step

    links = [line.strip() for line in evidence.splitlines() if line.strip()]
    for link in links:
        if not link.startswith(("http://", "https://")):
            raise InputError(f"evidence {link!r}: give an http(s) link")
    web = web_of(request)
    settings = CycleSettings.from_settings(web.settings)
    with web.transaction(me) as (session, user):
        run_step(session, cycle_id, step, user, web.now(), settings, note.strip() or None, links)
    return RedirectResponse(f"/cycles/{cycle_id}", status_code=303)


@router.post("/cycles/{cycle_id}/{event}")
def act(
    request: Request, cycle_id: int, event: str, me: Me,
    version: Annotated[int, Form()], comment: Annotated[str, Form()] = "",
) -> Response:
    from pulsecheck.errors import ConflictError
    from pulsecheck.workflow.cycles import get_cycle, transition

    if event not in ("submit", "approve", "reject"):
        raise InputError(f"unknown action {event!r}")
    web = web_of(request)
    with web.transaction(me) as (session, user):
        if get_cycle(session, cycle_id).version_id != version:
            raise ConflictError(f"cycle {cycle_id} changed since you opened it: nothing was saved; reload the page")
        transition(session, cycle_id, event, user, web.now(), comment.strip() or None)
    return RedirectResponse(f"/cycles/{cycle_id}", status_code=303)
