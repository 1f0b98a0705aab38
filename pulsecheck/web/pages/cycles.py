"""`/cycles` and `/cycles/{id}`: the portfolio review cycles, their steps, findings and decisions. The owner (or a
manager) completes steps, adds and closes findings and decides on at-risk accounts; the owner submits, a manager
approves or rejects, and an approved cycle is closed. Each action is the CLI's service call (`cycle step`,
`cycle finding add|close`, `cycle decide`, `cycle submit|approve|reject|close`) as the signed-in user: the
permission table decides, and the audit rows name the user `via web`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from pulsecheck.errors import ConflictError, InputError
from pulsecheck.storage.models import ReviewCycle, User
from pulsecheck.web.auth import Principal, signed_in
from pulsecheck.web.context import page, web_of

router = APIRouter()
Me = Annotated[Principal, Depends(signed_in)]
EVENTS = ("submit", "approve", "reject", "close")


@router.get("/cycles", response_class=HTMLResponse)
def listing(request: Request, me: Me) -> Response:
    from pulsecheck.workflow.cycles import list_cycles, summary_dict

    web = web_of(request)
    with web.transaction(me) as (session, _user):
        cycles = [summary_dict(session, cycle) for cycle in list_cycles(session)]
    return page(request, "cycles.html", cycles=cycles)


def _may(session: Session, cycle: ReviewCycle, user: User) -> dict[str, bool]:
    """What the page offers `user`: the permission table's answer for this cycle in its state (the services
    check it again when the form comes back)."""
    from pulsecheck.states import permissions
    from pulsecheck.workflow.cycles.access import context

    who = context(session, cycle, user).who()
    state = cycle.state
    return {
        "work": state == "draft" and permissions.allowed("cycle.work", who),
        "submit": state == "draft" and permissions.allowed("cycle.submit", who),
        "approve": state == "submitted" and permissions.allowed("cycle.approve", who) and user.name != cycle.owner,
        "reject": state == "submitted" and permissions.allowed("cycle.reject", who),
        "close": state == "approved" and permissions.allowed("cycle.close", who),
    }


@router.get("/cycles/{cycle_id}", response_class=HTMLResponse)
def show(request: Request, cycle_id: int, me: Me) -> Response:
    from pulsecheck.states.cycle import DECISIONS, FINDING_KINDS, STEPS, open_steps
    from pulsecheck.workflow.cycles import cycle_dict, get_cycle

    web = web_of(request)
    with web.transaction(me) as (session, user):
        cycle = get_cycle(session, cycle_id)
        data = cycle_dict(session, cycle)
        version = cycle.version_id
        may = _may(session, cycle, user)
    done = [s["step"] for s in data["steps"] if s["done"]]
    return page(request, "cycle.html", cycle=data, version=version, steps=STEPS, may=may,
                next_step=next(iter(open_steps(done)), None), at_risk=_at_risk(data), kinds=FINDING_KINDS,
                decision_kinds=DECISIONS)


def _at_risk(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The at-risk accounts the classify step found, each with the decision taken on it (if any)."""
    classify = next((s for s in data["steps"] if s["step"] == "classify" and s["result"]), None)
    decided = {d["account"]: d for d in data["decisions"]}
    rows = classify["result"].get("at_risk", []) if classify else []
    return [row | {"decided": decided.get(row.get("account"))} for row in rows]


def _same_version(cycle: ReviewCycle, version: int) -> None:
    """A form answers the cycle as it was shown: if it changed since, the later sender loses (409)."""
    if cycle.version_id != version:
        raise ConflictError(f"cycle {cycle.id} changed since you opened it: nothing was saved; reload the page")


@router.post("/cycles/{cycle_id}/step")
def step(
    request: Request, cycle_id: int, me: Me, step: Annotated[str, Form()],
    note: Annotated[str, Form()] = "", evidence: Annotated[str, Form()] = "",
) -> Response:
    """Complete one SOP step as the signed-in user; evidence from the web is a link (a file path would name a file
    on the server)."""
    from pulsecheck.states.cycle import check_step_name
    from pulsecheck.workflow.cycles import CycleSettings, run_step

    check_step_name(step)
    links = [line.strip() for line in evidence.splitlines() if line.strip()]
    for link in links:
        if not link.startswith(("http://", "https://")):
            raise InputError(f"evidence {link!r}: give an http(s) link")
    web = web_of(request)
    settings = CycleSettings.from_settings(web.settings)
    with web.transaction(me) as (session, user):
        run_step(session, cycle_id, step, user, web.now(), settings, note.strip() or None, links,
                 web.settings.attachments.max_size)
    return RedirectResponse(f"/cycles/{cycle_id}#steps", status_code=303)


def _day(text: str, name: str) -> date | None:
    from pulsecheck.timeutil import parse_date

    if not text.strip():
        return None
    try:
        return parse_date(text.strip())
    except ValueError as exc:
        raise InputError(f"{name}: {exc}") from None


@router.post("/cycles/{cycle_id}/findings/add")
def add_finding(
    request: Request, cycle_id: int, me: Me, kind: Annotated[str, Form()], detail: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "", owner: Annotated[str, Form()] = "", due: Annotated[str, Form()] = "",
) -> Response:
    """`cycle finding add`: a finding, optionally with a corrective action, its owner and due date."""
    from pulsecheck.workflow.cycles import add_finding as add

    due_date = _day(due, "due")
    web = web_of(request)
    with web.transaction(me) as (session, user):
        add(session, cycle_id, kind, detail, user, web.now(), action.strip() or None, owner.strip() or None,
            due_date)
    return RedirectResponse(f"/cycles/{cycle_id}#findings", status_code=303)


@router.post("/cycles/{cycle_id}/findings/{finding_id}/close")
def close_finding(
    request: Request, cycle_id: int, finding_id: int, me: Me, note: Annotated[str, Form()] = "",
) -> Response:
    """`cycle finding close`: close an open finding of this cycle with a note."""
    from pulsecheck.errors import NotFoundError
    from pulsecheck.workflow.cycles import close_finding as close
    from pulsecheck.workflow.cycles import findings_of

    web = web_of(request)
    with web.transaction(me) as (session, user):
        if finding_id not in {f.id for f in findings_of(session, cycle_id)}:
            raise NotFoundError(f"cycle {cycle_id} has no finding {finding_id}")
        close(session, finding_id, note, user, web.now())
    return RedirectResponse(f"/cycles/{cycle_id}#findings", status_code=303)


@router.post("/cycles/{cycle_id}/decide")
def decide(
    request: Request, cycle_id: int, me: Me, version: Annotated[int, Form()], account: Annotated[str, Form()],
    decision: Annotated[str, Form()], owner: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
) -> Response:
    """`cycle decide`: monitor an at-risk account (with a reason) or escalate it; deciding again changes it."""
    from pulsecheck.workflow.cycles import decide as decide_it
    from pulsecheck.workflow.cycles import get_cycle

    if not account.strip():
        raise InputError("account: choose the account to decide on")
    if not owner.strip():
        raise InputError("owner: name who owns the follow-up")
    web = web_of(request)
    with web.transaction(me) as (session, user):
        _same_version(get_cycle(session, cycle_id), version)
        decide_it(session, cycle_id, account.strip(), decision, owner.strip(), reason, user, web.now())
    return RedirectResponse(f"/cycles/{cycle_id}#decisions", status_code=303)


@router.post("/cycles/{cycle_id}/{event}")
def act(
    request: Request, cycle_id: int, event: str, me: Me,
    version: Annotated[int, Form()], comment: Annotated[str, Form()] = "",
) -> Response:
    """`cycle submit|approve|reject|close`."""
    from pulsecheck.workflow.cycles import get_cycle, transition

    if event not in EVENTS:
        raise InputError(f"unknown action {event!r}")
    web = web_of(request)
    with web.transaction(me) as (session, user):
        _same_version(get_cycle(session, cycle_id), version)
        transition(session, cycle_id, event, user, web.now(), comment.strip() or None)
    return RedirectResponse(f"/cycles/{cycle_id}", status_code=303)
