"""`/reviews/{id}`: the template as a form, every reason it cannot be submitted yet, submit, approve and reject,
history, signature status, attachments. Each action is one call of the CLI's services as the signed-in user."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from pulsecheck.errors import ConflictError, InputError
from pulsecheck.storage.models import Review, User
from pulsecheck.web.auth import Principal, signed_in
from pulsecheck.web.context import page, web_of
from pulsecheck.web.nav import nav_counts

router = APIRouter()
Me = Annotated[Principal, Depends(signed_in)]
RISK_FIELDS = ("description", "evidence", "category", "severity", "impact")
ACTION_FIELDS = ("description", "owner", "due_date", "success_criteria", "status", "risk")


def _same_version(review: Review, version: int) -> None:
    """A form answers the review as it was shown: if it changed since, the later sender loses (409)."""
    _same_version_of(review.id, review.version_id, version)


def _same_version_of(review_id: int, current: int, version: int) -> None:
    if current != version:
        raise ConflictError(
            f"review {review_id} changed since you opened it (someone else acted on it): nothing was saved; "
            "reload the page to see the current review"
        )


def _version_now(session: Session, review_id: int) -> int:
    """The review's version as stored, read without loading the review (the transition reads it its own way); or
    the not-found error."""
    from sqlalchemy import select

    from pulsecheck.workflow.reviews import get_review

    found = session.scalar(select(Review.version_id).where(Review.id == review_id))
    return found if found is not None else get_review(session, review_id).version_id


def _may(review: Review, user: User, manager: str | None, actions: tuple[str, ...]) -> dict[str, bool]:
    """Whether `user` may do each of `actions` (`review.ACTION`) on `review`, whose reviewer's manager is
    `manager`."""
    from pulsecheck.states import permissions

    who = permissions.actor(user.name, user.role_set, {"its_reviewer": review.reviewer,
                                                       "its_approver": review.approver}, {review.reviewer: manager})
    return {action: permissions.allowed(f"review.{action}", who) for action in actions}


@router.get("/reviews/{review_id}", response_class=HTMLResponse)
def show(request: Request, review_id: int, me: Me) -> Response:
    from pulsecheck.states.review import EDITABLE_STATES, missing_for_submit
    from pulsecheck.workflow import attachments
    from pulsecheck.workflow.reviews import content_of, get_review, load_for_show, review_dict
    from pulsecheck.workflow.signoffs import describe_signatures

    web = web_of(request)
    with web.transaction(me) as (session, user):
        found = load_for_show(session, review_id)
        review = get_review(session, review_id)  # the one just loaded; or the not-found error
        manager = found[1] if found else None
        links = attachments.links_of(session, attachments.REVIEW, review.id)  # read once for every use below
        # the stored files in one query, held here: the check in review_dict (`session.get` of each) and the sizes
        # below find them in the session instead of reading each again (the session keeps rows weakly)
        held = attachments.stored_of(session, links)
        data = review_dict(review, with_context=True, links=links)
        sizes = {link.sha256: held[link.sha256].size if link.sha256 in held else 0 for link in links}
        may = _may(review, user, manager, ("edit", "submit", "approve", "reject"))
        missing = missing_for_submit(content_of(review, links), web.now().astimezone(web.settings.tz).date())
        signatures = describe_signatures(session, "review_event", [event.id for event in review.events])
        version = review.version_id
        nav = nav_counts(web, me.name, session)
    editable = data["state"] in EDITABLE_STATES and may["edit"]
    return page(
        request, "review.html", nav=nav, review=data, version=version, may=may, editable=editable, missing=missing,
        attachments=[(link, sizes[link.sha256]) for link in links], signatures=signatures,
        risk_fields=RISK_FIELDS,
    )


async def _form_dict(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _rows(form: dict[str, str], prefix: str, fields: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows `prefix-N-field` of the form, in N order, without those marked removed or left blank."""
    numbers = sorted({int(key.split("-")[1]) for key in form if key.startswith(prefix + "-")
                      and key.split("-")[1].isascii() and key.split("-")[1].isdigit()})
    rows = []
    for n in numbers:
        row = {name: form.get(f"{prefix}-{n}-{name}", "").strip() for name in fields}
        if form.get(f"{prefix}-{n}-remove") or not row["description"]:
            continue
        rows.append(row | {"n": str(n)})
    return rows


def template_from_form(form: dict[str, str]) -> dict[str, Any]:
    """The `review fill` form data of a posted page: text fields, then risks with their actions (a risk's
    actions name it by its row number on the page)."""
    data: dict[str, Any] = {}
    for name in ("account_goals", "goal_summary", "overall_assessment", "employee_comments"):
        if name in form:
            data[name] = form[name].strip() or None
    if "next_review_date" in form:
        data["next_review_date"] = form["next_review_date"].strip() or None
    kept = _rows(form, "risk", RISK_FIELDS)
    removed = {key.split("-")[1] for key in form if key.startswith("risk-") and key.endswith("-remove")}
    # an action goes with the risk it mitigates when that risk is removed
    actions = [a for a in _rows(form, "action", ACTION_FIELDS) if a["risk"] not in removed]
    orphans = [a for a in actions if a["risk"] not in {r["n"] for r in kept}]
    if orphans:
        raise InputError(f"action {orphans[0]['description']!r}: choose the risk it mitigates")
    risks = []
    for risk in kept:
        mine: list[dict[str, Any]] = [
            {k: (a[k] or None) for k in ACTION_FIELDS if k != "risk"} | {"status": a["status"] or "open"}
            for a in actions if a["risk"] == risk["n"]
        ]
        shown: dict[str, Any] = {k: (risk[k] or None) for k in RISK_FIELDS}
        shown["category"] = shown["category"] or "customer"
        shown["severity"] = shown["severity"] or "medium"
        risks.append(shown | {"actions": mine})
    data["risks"] = risks
    return data


@router.post("/reviews/{review_id}/save")
async def save(request: Request, review_id: int, me: Me) -> Response:
    from starlette.concurrency import run_in_threadpool

    from pulsecheck.workflow.review_form import parse_form

    form = await _form_dict(request)  # the rows of the page are dynamic: read the form itself, then work in a thread
    parsed = parse_form(template_from_form(form), "form")
    await run_in_threadpool(_save, request, review_id, me, parsed, _version(form))
    return RedirectResponse(f"/reviews/{review_id}#template", status_code=303)


def _save(request: Request, review_id: int, me: Principal, parsed: Any, version: int) -> None:
    from pulsecheck.workflow.reviews import fill, get_review

    web = web_of(request)
    with web.transaction(me) as (session, user):
        _same_version(get_review(session, review_id), version)
        fill(session, review_id, parsed, user, web.now())


def _version(form: dict[str, str]) -> int:
    try:
        return int(form.get("version", ""))
    except ValueError:
        raise InputError("version: missing; reload the page") from None


@router.post("/reviews/{review_id}/{event}")
def act(
    request: Request, review_id: int, event: str, me: Me,
    version: Annotated[int, Form()], comment: Annotated[str, Form()] = "",
) -> Response:
    from pulsecheck.workflow.reviews import advance

    if event not in ("submit", "approve", "reject"):
        raise InputError(f"unknown action {event!r}")
    web = web_of(request)
    with web.transaction(me) as (session, user):
        _same_version_of(review_id, _version_now(session, review_id), version)
        advance(session, review_id, event, user, web.now(), comment.strip() or None)
    return RedirectResponse(f"/reviews/{review_id}", status_code=303)


@router.post("/reviews/{review_id}/attachments/add")
def upload(
    request: Request, review_id: int, me: Me, file: Annotated[UploadFile, File()],
    note: Annotated[str, Form()] = "",
) -> Response:
    from pulsecheck.workflow.attachments import Upload
    from pulsecheck.workflow.reviews import attach_file

    web = web_of(request)
    limit = web.settings.attachments.max_size
    content = file.file.read(limit + 1)
    if len(content) > limit:
        raise InputError(f"{file.filename}: over the attachment limit of {limit} bytes ([attachments] max_size)")
    name = (file.filename or "attachment").replace("\\", "/").rsplit("/", 1)[-1][:255] or "attachment"
    with web.transaction(me) as (session, user):
        attach_file(session, review_id, Upload(name, content), user, web.now(), note.strip() or None)
    return RedirectResponse(f"/reviews/{review_id}#attachments", status_code=303)


@router.get("/reviews/{review_id}/attachments/{number}")
def download(request: Request, review_id: int, number: int, me: Me) -> Response:
    """An attached file, always as a download (never rendered in this origin: an uploaded .html cannot run here)."""
    from pulsecheck.web.download import OCTETS
    from pulsecheck.web.download import download as send
    from pulsecheck.workflow import attachments
    from pulsecheck.workflow.reviews import get_review

    web = web_of(request)
    with web.transaction(me) as (session, _user):
        get_review(session, review_id)
        link, content = attachments.content(session, attachments.REVIEW, review_id, number, f"review {review_id}")
        filename = link.filename
    return send(content, filename, OCTETS)

