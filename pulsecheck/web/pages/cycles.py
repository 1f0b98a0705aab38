"""`/cycles` and `/cycles/{id}`: the portfolio review cycles, their steps, findings and decisions. Those who may
start a cycle start one; the owner (or a manager) completes steps, adds, edits and closes findings and decides on
at-risk accounts; the owner submits, a manager approves or rejects, and an approved cycle is closed. Anyone signed
in reads a cycle, downloads its step evidence and export, and verifies it. Each action is the CLI's service call
(`cycle start`, `cycle step`, `cycle finding add|edit|close`, `cycle decide`, `cycle submit|approve|reject|close`,
`cycle verify`, `cycle export`) as the signed-in user: the permission table decides, and the audit rows name the
user `via web`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
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
    from pulsecheck.states import permissions
    from pulsecheck.workflow.cycles import list_cycles, summary_dict

    web = web_of(request)
    with web.transaction(me) as (session, user):
        cycles = [summary_dict(session, cycle) for cycle in list_cycles(session)]
        may_start = permissions.allowed("cycle.start", permissions.actor(user.name, user.role_set))
    return page(request, "cycles.html", cycles=cycles, may_start=may_start, me_name=user.name)


@router.post("/cycles/start")
def start(
    request: Request, me: Me, period: Annotated[str, Form()], segments: Annotated[str, Form()] = "",
    owner: Annotated[str, Form()] = "",
) -> Response:
    """`cycle start`: segments are given comma- or space-separated (none: every segment)."""
    from pulsecheck.workflow.cycles import start as start_cycle

    chosen = [s for s in segments.replace(",", " ").split() if s]
    web = web_of(request)
    with web.transaction(me) as (session, user):
        started = start_cycle(session, period, chosen, owner.strip() or None, user, web.now(), web.settings.tz)
        cycle_id = started.id
    return RedirectResponse(f"/cycles/{cycle_id}", status_code=303)


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
    files: Annotated[list[UploadFile | str] | None, File()] = None,  # a file input left empty comes as ""
) -> Response:
    """Complete one SOP step as the signed-in user; evidence from the web is a link or an uploaded file (a typed
    path would name a file on the server)."""
    from pulsecheck.states.cycle import check_step_name
    from pulsecheck.workflow.attachments import Upload
    from pulsecheck.workflow.cycles import CycleSettings, run_step

    check_step_name(step)
    links = [line.strip() for line in evidence.splitlines() if line.strip()]
    for link in links:
        if not link.startswith(("http://", "https://")):
            raise InputError(f"evidence {link!r}: give an http(s) link")
    web = web_of(request)
    limit = web.settings.attachments.max_size
    uploads: list[str | Upload] = [*links]
    for file in files or []:
        if isinstance(file, str) or not file.filename:  # the empty part a browser sends when no file was chosen
            continue
        content = file.file.read(limit + 1)
        if len(content) > limit:
            raise InputError(f"{file.filename}: over the attachment limit of {limit} bytes ([attachments] max_size)")
        uploads.append(Upload(file.filename.replace("\\", "/").rsplit("/", 1)[-1][:255] or "evidence", content))
    settings = CycleSettings.from_settings(web.settings)
    with web.transaction(me) as (session, user):
        run_step(session, cycle_id, step, user, web.now(), settings, note.strip() or None, uploads, limit)
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


@router.post("/cycles/{cycle_id}/findings/{finding_id}/edit")
def edit_finding(
    request: Request, cycle_id: int, finding_id: int, me: Me, version: Annotated[str, Form()],
    kind: Annotated[str, Form()], detail: Annotated[str, Form()] = "", action: Annotated[str, Form()] = "",
    owner: Annotated[str, Form()] = "", due: Annotated[str, Form()] = "",
) -> Response:
    """`cycle finding edit`: the form sends every field as the editor left it (an empty one clears it) and the
    finding's version as it was shown; a finding changed since is a 409 and nothing is saved."""
    from pulsecheck.errors import NotFoundError
    from pulsecheck.workflow.cycles import FindingEdit, findings_of
    from pulsecheck.workflow.cycles import edit_finding as edit

    due_date = _day(due, "due")
    change = FindingEdit(kind, detail, action, owner, due_date, clear_due=due_date is None)
    web = web_of(request)
    with web.transaction(me) as (session, user):
        if finding_id not in {f.id for f in findings_of(session, cycle_id)}:
            raise NotFoundError(f"cycle {cycle_id} has no finding {finding_id}")
        edit(session, finding_id, change, user, web.now(), version)
    return RedirectResponse(f"/cycles/{cycle_id}#finding-{finding_id}", status_code=303)


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


@router.get("/cycles/{cycle_id}/steps/{step}/evidence/{number}")
def evidence(request: Request, cycle_id: int, step: str, number: int, me: Me) -> Response:
    """A step's evidence file, as a download; only the files of this cycle's steps are found here."""
    from pulsecheck.errors import NotFoundError
    from pulsecheck.states.cycle import check_step_name
    from pulsecheck.web.download import download
    from pulsecheck.workflow import attachments
    from pulsecheck.workflow.cycles import get_cycle, steps_of

    check_step_name(step)
    web = web_of(request)
    with web.transaction(me) as (session, _user):
        get_cycle(session, cycle_id)
        done = steps_of(session, cycle_id).get(step)
        what = f"step {step} of cycle {cycle_id}"
        if done is None:
            raise NotFoundError(f"{what} is not done: it has no evidence")
        link, content = attachments.content(session, attachments.CYCLE_STEP, done.id, number, what)
        filename = link.filename
    return download(content, filename)


EXPORT_TYPES = {"md": "text/markdown; charset=utf-8", "json": "application/json", "html": "text/html; charset=utf-8"}


@router.get("/cycles/{cycle_id}/export")
def export(request: Request, cycle_id: int, me: Me, format: str = "md") -> Response:  # noqa: A002
    """`cycle export --format md|json|html`, as a download (the HTML one is a standalone page)."""
    from pulsecheck.reports.cycle import render
    from pulsecheck.web.download import download
    from pulsecheck.workflow.cycles import cycle_dict, get_cycle

    if format not in EXPORT_TYPES:
        raise InputError(f"format {format!r}: choose from {', '.join(EXPORT_TYPES)}")
    web = web_of(request)
    with web.transaction(me) as (session, _user):
        data = cycle_dict(session, get_cycle(session, cycle_id), full=True)
    return download(render(data, format).encode("utf-8"), f"cycle-{cycle_id}.{format}", EXPORT_TYPES[format])


@router.get("/cycles/{cycle_id}/verify", response_class=HTMLResponse)
def verify(request: Request, cycle_id: int, me: Me) -> Response:
    """`cycle verify`: the seal against the content, the audit trail against the state."""
    from pulsecheck.workflow.cycles import get_cycle
    from pulsecheck.workflow.cycles import verify as check

    web = web_of(request)
    with web.transaction(me) as (session, _user):
        cycle = get_cycle(session, cycle_id)
        problems = check(session, cycle)
        found = {"id": cycle.id, "period": cycle.period, "state": cycle.state, "digest": cycle.digest}
    return page(request, "cycle_verify.html", cycle=found, problems=problems)


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
