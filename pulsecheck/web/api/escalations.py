"""`/api/v1` escalations (list, ack, resolve), with `escalations list --json`'s shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

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
