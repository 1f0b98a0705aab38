"""`/api/v1/cycles`: the reads (list, show, verify) with `cycle list/show/verify --json`'s shapes, and the actions:
start, a step, findings (add, edit, close), decisions and the transitions, each the CLI's service call as the
token's user (the permission table decides; audited `via token`), answering the cycle in `cycle show --json`'s
shape. A cycle's version is its ETag:
an action sent with `If-Match` on an older one is a 409 conflict; a finding edit takes the finding's own version
(`findings[].version` of `cycle show --json`) the same way."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Request, Response
from pydantic import BaseModel, Field

from pulsecheck.errors import ConflictError, InputError
from pulsecheck.vocab import CYCLE_STATES
from pulsecheck.web.api.base import ERRORS, Caller, JsonErrorRoute, Paging, RecordId, acting
from pulsecheck.web.auth import Principal

router = APIRouter(prefix="/cycles", tags=["cycles"], route_class=JsonErrorRoute, responses=ERRORS)
IfMatch = Annotated[str | None, Header(description="The ETag of what you read: 409 if it changed since")]
Text = Annotated[str, Field(max_length=100_000)]


class StartBody(BaseModel):
    """`cycle start --period P [--segment S ...] [--owner U]`."""

    period: str = Field(max_length=20)
    segments: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=1000)
    owner: str | None = Field(default=None, max_length=100)


class StepBody(BaseModel):
    """`cycle step ID STEP [--note T] [--evidence URL ...]` (evidence from the API is an http(s) link)."""

    note: Text | None = None
    evidence: list[Annotated[str, Field(max_length=2000)]] = Field(default_factory=list, max_length=100)


class FindingBody(BaseModel):
    """`cycle finding add ID --kind K --detail T [--action T --owner U --due DATE]`."""

    kind: str = Field(max_length=20)
    detail: Text
    action: Text | None = None
    owner: str | None = Field(default=None, max_length=100)
    due: date | None = None


class FindingEditBody(BaseModel):
    """`cycle finding edit FID`: fields left out stay; an empty action or owner clears it, `clear_due` the date."""

    kind: str | None = Field(default=None, max_length=20)
    detail: Text | None = None
    action: Text | None = None
    owner: str | None = Field(default=None, max_length=100)
    due: date | None = None
    clear_due: bool = False


class CloseBody(BaseModel):
    """`cycle finding close FID --note T`."""

    note: Text


class DecideBody(BaseModel):
    """`cycle decide ID ACCOUNT monitor|escalate --owner U [--reason T]`."""

    account: str = Field(max_length=200)
    decision: Literal["monitor", "escalate"]
    owner: str = Field(max_length=100)
    reason: Text | None = None


class CommentBody(BaseModel):
    """The comment of a submit, approve, reject or close (required to reject)."""

    comment: str | None = Field(default=None, max_length=10_000)


def _given(if_match: str | None) -> str | None:
    """The version an `If-Match` header names (None: any)."""
    if if_match is None or if_match.strip() == "*":
        return None
    return if_match.strip().removeprefix("W/").strip('"')


def _check_version(version: int, cycle_id: int, if_match: str | None) -> None:
    given = _given(if_match)
    if given is not None and given != str(version):
        raise ConflictError(f"cycle {cycle_id} changed since you read it: nothing was saved; read it again")


def _answer(request: Request, me: Principal, cycle_id: int, response: Response) -> dict[str, Any]:
    """The cycle as it now stands (a new read, after the action's commit), its version as the ETag."""
    from pulsecheck.workflow.cycles import cycle_dict, get_cycle

    with acting(request, me) as (session, _user):
        cycle = get_cycle(session, cycle_id)
        response.headers["ETag"] = f'"{cycle.version_id}"'
        data: dict[str, Any] = cycle_dict(session, cycle)
    return data


@router.get("", summary="Portfolio review cycles, newest first (`cycle list --json`)")
def list_cycles(request: Request, me: Caller, page: Paging, state: str | None = None) -> dict[str, Any]:
    from pulsecheck.workflow.cycles import cycle_page

    if state is not None and state not in CYCLE_STATES:
        raise InputError(f"state: {state!r} is not one of {', '.join(CYCLE_STATES)}")
    with acting(request, me) as (session, _user):
        return cycle_page(session, page, state).to_dict()


@router.get("/{cycle_id}", summary="One cycle (`cycle show --json`); its version is the ETag")
def show_cycle(request: Request, cycle_id: RecordId, me: Caller, response: Response) -> dict[str, Any]:
    return _answer(request, me, cycle_id, response)


@router.post("", status_code=201, summary="Start a cycle (`cycle start`)")
def start(request: Request, body: StartBody, me: Caller, response: Response) -> dict[str, Any]:
    from pulsecheck.workflow.cycles import start as start_cycle

    web = request.app.state.web
    with acting(request, me) as (session, user):
        cycle_id = start_cycle(session, body.period, body.segments, body.owner, user, web.now(), web.settings.tz).id
    return _answer(request, me, cycle_id, response)


@router.post("/{cycle_id}/steps/{step}", summary="Complete a step (`cycle step ID STEP`)")
def step(
    request: Request, cycle_id: RecordId, step: str, me: Caller, response: Response,
    body: Annotated[StepBody | None, Body()] = None, if_match: IfMatch = None,
) -> dict[str, Any]:
    from pulsecheck.states.cycle import check_step_name
    from pulsecheck.workflow.cycles import CycleSettings, get_cycle, run_step

    check_step_name(step)
    given = body or StepBody()
    for link in given.evidence:
        if not link.strip().startswith(("http://", "https://")):
            raise InputError(f"evidence {link!r}: give an http(s) link")
    web = request.app.state.web
    settings = CycleSettings.from_settings(web.settings)
    with acting(request, me) as (session, user):
        _check_version(get_cycle(session, cycle_id).version_id, cycle_id, if_match)
        run_step(session, cycle_id, step, user, web.now(), settings, (given.note or "").strip() or None,
                 [link.strip() for link in given.evidence], web.settings.attachments.max_size)
    return _answer(request, me, cycle_id, response)


@router.post("/{cycle_id}/findings", status_code=201, summary="Add a finding (`cycle finding add`)")
def add_finding(request: Request, cycle_id: RecordId, body: FindingBody, me: Caller,
                response: Response) -> dict[str, Any]:
    from pulsecheck.workflow.cycles import add_finding as add

    web = request.app.state.web
    with acting(request, me) as (session, user):
        add(session, cycle_id, body.kind, body.detail, user, web.now(), body.action, body.owner, body.due)
    return _answer(request, me, cycle_id, response)


def _finding_of(session: Any, cycle_id: int, finding_id: int) -> None:
    from pulsecheck.errors import NotFoundError
    from pulsecheck.workflow.cycles import findings_of

    if finding_id not in {f.id for f in findings_of(session, cycle_id)}:
        raise NotFoundError(f"cycle {cycle_id} has no finding {finding_id}")


@router.patch("/{cycle_id}/findings/{finding_id}", summary="Edit a finding (`cycle finding edit`)")
def edit_finding(
    request: Request, cycle_id: RecordId, finding_id: RecordId, body: FindingEditBody, me: Caller,
    response: Response, if_match: IfMatch = None,
) -> dict[str, Any]:
    from pulsecheck.workflow.cycles import FindingEdit
    from pulsecheck.workflow.cycles import edit_finding as edit

    change = FindingEdit(body.kind, body.detail, body.action, body.owner, body.due, body.clear_due)
    web = request.app.state.web
    with acting(request, me) as (session, user):
        _finding_of(session, cycle_id, finding_id)
        edit(session, finding_id, change, user, web.now(), _given(if_match))
    return _answer(request, me, cycle_id, response)


@router.post("/{cycle_id}/findings/{finding_id}/close", summary="Close a finding (`cycle finding close`)")
def close_finding(
    request: Request, cycle_id: RecordId, finding_id: RecordId, body: CloseBody, me: Caller, response: Response,
) -> dict[str, Any]:
    from pulsecheck.workflow.cycles import close_finding as close

    web = request.app.state.web
    with acting(request, me) as (session, user):
        _finding_of(session, cycle_id, finding_id)
        close(session, finding_id, body.note, user, web.now())
    return _answer(request, me, cycle_id, response)


@router.post("/{cycle_id}/decisions", summary="Decide on an account (`cycle decide`)")
def decide(
    request: Request, cycle_id: RecordId, body: DecideBody, me: Caller, response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    from pulsecheck.workflow.cycles import decide as decide_it
    from pulsecheck.workflow.cycles import get_cycle

    web = request.app.state.web
    with acting(request, me) as (session, user):
        _check_version(get_cycle(session, cycle_id).version_id, cycle_id, if_match)
        decide_it(session, cycle_id, body.account, body.decision, body.owner, body.reason, user, web.now())
    return _answer(request, me, cycle_id, response)


@router.get("/{cycle_id}/verify", summary="Verify the seal and audit trail (`cycle verify --json`)")
def verify(request: Request, cycle_id: RecordId, me: Caller) -> dict[str, Any]:
    from pulsecheck.workflow.cycles import get_cycle
    from pulsecheck.workflow.cycles import verify as check

    with acting(request, me) as (session, _user):
        cycle = get_cycle(session, cycle_id)
        problems = check(session, cycle)
        return {"cycle": cycle_id, "state": cycle.state, "sealed": bool(cycle.digest), "ok": not problems,
                "problems": problems}


@router.post("/{cycle_id}/{event}", summary="Submit, approve, reject or close (`cycle EVENT ID --comment`)")
def act(
    request: Request, cycle_id: RecordId, event: Literal["submit", "approve", "reject", "close"], me: Caller,
    response: Response, body: Annotated[CommentBody | None, Body()] = None, if_match: IfMatch = None,
) -> dict[str, Any]:
    from pulsecheck.workflow.cycles import get_cycle, transition

    web = request.app.state.web
    with acting(request, me) as (session, user):
        _check_version(get_cycle(session, cycle_id).version_id, cycle_id, if_match)
        comment = (body.comment or "").strip() or None if body else None
        transition(session, cycle_id, event, user, web.now(), comment)
    return _answer(request, me, cycle_id, response)
