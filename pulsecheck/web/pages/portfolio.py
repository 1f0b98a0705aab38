"""`/portfolio`: the portfolio, live: summary figures and the at-risk table filtered, searched, sorted and paged in
SQL (`workflow.portfolio_live`) in one pass over the accounts, so a page costs a few queries whatever the size of
the portfolio."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from pulsecheck.storage.paging import PageRequest
from pulsecheck.web.auth import Principal, signed_in
from pulsecheck.web.context import page, web_of
from pulsecheck.web.nav import nav_counts

router = APIRouter()
Me = Annotated[Principal, Depends(signed_in)]
PAGE_SIZE = 50
OVERDUE_SHOWN = 20


@router.get("/portfolio", response_class=HTMLResponse)
def portfolio(
    request: Request, me: Me, segment: str = "", owner: str = "", bucket: str = "", priority: str = "",
    q: str = "", sort: str = "", page_number: Annotated[int, Query(alias="page", ge=1, le=2**31 - 1)] = 1,
) -> Response:
    from pulsecheck.workflow.portfolio import segments
    from pulsecheck.workflow.portfolio_live import Filters, overdue_page, portfolio_view

    web = web_of(request)
    now, matrix = web.now(), web.settings.priority_matrix()
    chosen = Filters(segment or None, owner.strip() or None, bucket or None, priority or None, q.strip() or None)
    with web.transaction(me) as (session, _user):
        figures, rows = portfolio_view(session, now, matrix, chosen,
                                       PageRequest(PAGE_SIZE, (page_number - 1) * PAGE_SIZE, sort or None))
        overdue = overdue_page(session, now, chosen, PageRequest(OVERDUE_SHOWN), figures.overdue_reviews,
                               checked=True)
        known_segments = segments(session)
        nav = nav_counts(web, me.name, session)
    filters = {"segment": segment, "owner": owner, "bucket": bucket, "priority": priority, "q": q, "sort": sort}
    return page(request, "portfolio.html", nav=nav, summary=figures, rows=rows.items, total=rows.total,
                page_number=page_number, pages=max(1, -(-rows.total // PAGE_SIZE)), filters=filters,
                segments=known_segments, overdue=overdue)
