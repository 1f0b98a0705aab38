"""`/api/v1` escalations (list, ack, resolve) and cycles (list, show), with `escalations list --json` and
`cycle list/show --json`'s shapes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from pulsecheck.errors import InputError
from pulsecheck.vocab import CYCLE_STATES
from pulsecheck.web.api.base import ERRORS, Caller, JsonErrorRoute, Paging, RecordId, acting
from pulsecheck.web.auth import Principal

router = APIRouter(route_class=JsonErrorRoute, responses=ERRORS)


@router.get("/escalations", tags=["escalations"], summary="Escalations, most urgent first (`escalations list`)")
def list_escalations(
    request: Request, me: Caller, page: Paging, open: bool = False, account: str | None = None,  # noqa: A002
) -> dict[str, Any]:
    from pulsecheck.workflow.accounts import get_account
    from pulsecheck.workflow.escalations import EscalationFilter, escalation_page

    now = request.app.state.web.now()
    with acting(request, me) as (session, _user):
        account_id = get_account(session, account).id if account else None
        chosen = EscalationFilter(("open", "acknowledged") if open else None, account_id)
        return escalation_page(session, page, chosen, now).to_dict()


def _escalation_action(request: Request, me: Principal, escalation_id: int, action: str) -> dict[str, Any]:
    from pulsecheck.workflow.escalations import acknowledge, escalation_dict, resolve

    now = request.app.state.web.now()
    with acting(request, me) as (session, user):
        done = (acknowledge if action == "ack" else resolve)(session, escalation_id, user, now)
        session.flush()
        return escalation_dict(done, now)


@router.post("/escalations/{escalation_id}/ack", tags=["escalations"], summary="Acknowledge (`escalations ack`)")
def ack(request: Request, escalation_id: RecordId, me: Caller) -> dict[str, Any]:
    return _escalation_action(request, me, escalation_id, "ack")


@router.post("/escalations/{escalation_id}/resolve", tags=["escalations"], summary="Resolve (`escalations resolve`)")
def resolve(request: Request, escalation_id: RecordId, me: Caller) -> dict[str, Any]:
    return _escalation_action(request, me, escalation_id, "resolve")


@router.get("/cycles", tags=["cycles"], summary="Portfolio review cycles, newest first (`cycle list --json`)")
def list_cycles(request: Request, me: Caller, page: Paging, state: str | None = None) -> dict[str, Any]:
    from pulsecheck.workflow.cycles import cycle_page

    if state is not None and state not in CYCLE_STATES:
        raise InputError(f"state: {state!r} is not one of {', '.join(CYCLE_STATES)}")
    with acting(request, me) as (session, _user):
        return cycle_page(session, page, state).to_dict()


@router.get("/cycles/{cycle_id}", tags=["cycles"], summary="One cycle (`cycle show --json`)")
def show_cycle(request: Request, cycle_id: RecordId, me: Caller) -> dict[str, Any]:
    from pulsecheck.workflow.cycles import cycle_dict, get_cycle

    with acting(request, me) as (session, _user):
        data: dict[str, Any] = cycle_dict(session, get_cycle(session, cycle_id))
    return data
