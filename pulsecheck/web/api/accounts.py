"""`/api/v1` reads of the book: accounts (list, show), the portfolio report and the caller's inbox, with the
shapes of `accounts list/show --json` and `report portfolio --json`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from pulsecheck.errors import InputError
from pulsecheck.web.api.base import ERRORS, Caller, JsonErrorRoute, Paging, acting

router = APIRouter(route_class=JsonErrorRoute, responses=ERRORS)


@router.get("/accounts", tags=["accounts"], summary="Accounts with their latest score (`accounts list --json`)")
def list_accounts(
    request: Request, me: Caller, page: Paging, segment: str | None = None, bucket: str | None = None,
    owner: str | None = None,
) -> dict[str, Any]:
    from pulsecheck.workflow.accounts import account_page

    with acting(request, me) as (session, _user):
        return account_page(session, page, segment=segment, bucket=bucket, owner=owner).to_dict()


@router.get("/accounts/{account}", tags=["accounts"], summary="One account and its score trend (`accounts show`)")
def show_account(
    request: Request, account: str, me: Caller, history: int = Query(12, ge=1, le=1000)
) -> dict[str, Any]:
    from pulsecheck.workflow.account_views import account_view

    web = request.app.state.web
    with acting(request, me) as (session, _user):
        return account_view(session, account, web.now(), history)


@router.get("/portfolio", tags=["portfolio"], summary="The portfolio report (`report portfolio --json`)")
def portfolio(
    request: Request, me: Caller, as_of: str | None = None, segment: str | None = None
) -> dict[str, Any]:
    from pulsecheck.timeutil import end_of_day, parse_date
    from pulsecheck.workflow.portfolio import SCORECARD_PAGES, build_portfolio

    web = request.app.state.web
    when = web.now()
    if as_of:
        try:
            when = end_of_day(parse_date(as_of), web.settings.tz)
        except ValueError as exc:
            raise InputError(f"as_of: {exc}") from None
    with acting(request, me) as (session, _user):
        matrix = web.settings.priority_matrix()  # the at-risk scorecards too, as `report portfolio --json` has them
        data: dict[str, Any] = build_portfolio(session, when, matrix, segment, SCORECARD_PAGES).as_dict()
    return data


@router.get("/portfolio/summary", tags=["portfolio"], summary="The live portfolio's figures (`/portfolio`)")
def portfolio_summary(
    request: Request, me: Caller, segment: str | None = None, owner: str | None = None
) -> dict[str, Any]:
    """Accounts per bucket, unscored, at risk (count, ARR, per priority), open escalations and overdue reviews,
    for a segment and/or an owner's book."""
    from pulsecheck.workflow.portfolio_live import Filters, summary

    web = request.app.state.web
    with acting(request, me) as (session, _user):
        figures = summary(session, web.now(), web.settings.priority_matrix(), Filters(segment, owner))
        return figures.as_dict()


@router.get("/portfolio/at-risk", tags=["portfolio"], summary="The live at-risk accounts, filtered and paged")
def portfolio_at_risk(
    request: Request, me: Caller, page: Paging, segment: str | None = None, owner: str | None = None,
    bucket: str | None = None, priority: str | None = None, q: str | None = None,
) -> dict[str, Any]:
    """The `/portfolio` table: accounts at risk now, filtered by segment, owner, bucket and priority, searched in
    name and id (`q`), sorted (urgency, name, score, priority, renewal, owner, arr; `-name` reversed)."""
    from pulsecheck.workflow.portfolio_live import Filters, at_risk_page

    web = request.app.state.web
    chosen = Filters(segment, owner, bucket, priority, q)
    with acting(request, me) as (session, _user):
        found = at_risk_page(session, web.now(), web.settings.priority_matrix(), chosen, page)
        return found.map(lambda row: row.as_dict()).to_dict()


@router.get("/inbox", tags=["inbox"], summary="What waits for me: drafts, approvals, escalations, actions, cycles")
def inbox(request: Request, me: Caller, limit: int = 50) -> dict[str, Any]:
    """The `pulsecheck inbox --json` shape: each section's first `limit` rows and its total."""
    from pulsecheck.workflow.inbox import inbox as find

    web = request.app.state.web
    now = web.now()
    with acting(request, me) as (session, user):
        today = now.astimezone(web.settings.tz).date()
        return find(session, user.name, now, today, limit=max(1, min(limit, 500))).to_dict()
