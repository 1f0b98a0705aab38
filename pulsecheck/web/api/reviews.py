"""`/api/v1/reviews`: list, show, history, submit, approve, reject and set a field, with `review --json`'s shapes.

A review's version is its ETag; an action sent with `If-Match` on an older version is a 409 conflict, as the
page's form is (and two writers racing without it still conflict on the version column)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Request, Response
from pydantic import BaseModel, Field

from pulsecheck.errors import ConflictError, InputError
from pulsecheck.vocab import REVIEW_STATES
from pulsecheck.web.api.base import ERRORS, Caller, JsonErrorRoute, Paging, RecordId, acting

router = APIRouter(prefix="/reviews", tags=["reviews"], route_class=JsonErrorRoute, responses=ERRORS)
IfMatch = Annotated[str | None, Header(description="The ETag of the review as you read it: 409 if it changed")]


class Decision(BaseModel):
    """The comment of a submit, approve or reject (required to reject; kept in the audit trail)."""

    comment: str | None = Field(default=None, max_length=10_000)


class FieldValue(BaseModel):
    """The new text of one template field (empty text clears it; dates as YYYY-MM-DD)."""

    value: str = Field(max_length=100_000)


def _etag(version: int) -> str:
    return f'"{version}"'


def _check_version(version: int, review_id: int, if_match: str | None) -> None:
    """Refuse (409) an action on a review that changed since the caller read the ETag `if_match`."""
    if if_match is None or if_match.strip() == "*":
        return
    given = if_match.strip().removeprefix("W/").strip('"')
    if given != str(version):
        raise ConflictError(
            f"review {review_id} changed since you opened it (someone else acted on it): nothing was saved; "
            "reload the page to see the current review"
        )


@router.get("", summary="List reviews, newest first (`review list --json`: total and one page of items)")
def list_reviews(
    request: Request, me: Caller, page: Paging, state: str | None = None, mine: bool = False,
    account: str | None = None,
) -> dict[str, Any]:
    from pulsecheck.workflow.accounts import get_account
    from pulsecheck.workflow.reviews import ReviewFilter, review_page

    if state is not None and state not in REVIEW_STATES:
        raise InputError(f"state: {state!r} is not one of {', '.join(REVIEW_STATES)}")
    with acting(request, me) as (session, user):
        account_id = get_account(session, account).id if account else None
        chosen = ReviewFilter(state, user.name if mine else None, None, account_id)
        return review_page(session, page, chosen).to_dict()


@router.get("/{review_id}", summary="One review (`review show --json`); its version is the ETag")
def show(request: Request, review_id: RecordId, me: Caller, response: Response) -> dict[str, Any]:
    from pulsecheck.workflow.reviews import get_review, load_for_show, review_dict

    with acting(request, me) as (session, _user):
        load_for_show(session, review_id)
        review = get_review(session, review_id)  # the one just loaded; or the not-found error
        response.headers["ETag"] = _etag(review.version_id)
        return review_dict(review, with_history=False, with_context=True)


@router.get("/{review_id}/history", summary="A review's audit trail (`review history --json`)")
def history(request: Request, review_id: RecordId, me: Caller) -> list[dict[str, Any]]:
    from pulsecheck.workflow.reviews import event_dict, get_review

    with acting(request, me) as (session, _user):
        return [event_dict(e) for e in get_review(session, review_id).events]


@router.post("/{review_id}/{event}", summary="Submit, approve or reject a review (`review EVENT --comment`)")
def act(
    request: Request, review_id: RecordId, event: Literal["submit", "approve", "reject"], me: Caller,
    response: Response, body: Annotated[Decision | None, Body()] = None, if_match: IfMatch = None,
) -> dict[str, Any]:
    from pulsecheck.workflow.reviews import get_review, review_dict, transition

    with acting(request, me) as (session, user):
        _check_version(get_review(session, review_id).version_id, review_id, if_match)
        comment = body.comment if body else None
        review = transition(session, review_id, event, user, request.app.state.web.now(), comment=comment)
        session.flush()  # the version the commit keeps
        data, version = review_dict(review, with_history=False), review.version_id
    response.headers["ETag"] = _etag(version)
    return data


@router.put("/{review_id}/fields/{field}", summary="Set one template field (`review set ID FIELD VALUE`)")
def set_field(
    request: Request, review_id: RecordId, field: str, body: FieldValue, me: Caller, response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    from pulsecheck.workflow.reviews import get_review, review_dict
    from pulsecheck.workflow.reviews import set_field as set_one

    web = request.app.state.web
    with acting(request, me) as (session, user):
        _check_version(get_review(session, review_id).version_id, review_id, if_match)
        review = set_one(session, review_id, field, body.value, user, web.now(), tz=web.settings.tz)
        session.flush()
        data, version = review_dict(review, with_history=False), review.version_id
    response.headers["ETag"] = _etag(version)
    return data
