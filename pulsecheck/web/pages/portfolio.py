"""`/portfolio`: the portfolio report, live: buckets, at-risk accounts filtered, searched and paged."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from pulsecheck.web.auth import Principal, signed_in
from pulsecheck.web.context import page, web_of

router = APIRouter()
Me = Annotated[Principal, Depends(signed_in)]
PAGE_SIZE = 50
# column -> sort key of an at-risk row (None sorts last)
SORTS: dict[str, Any] = {
    "name": lambda a: (a.name.lower(),),
    "score": lambda a: (a.score is None, a.score or 0.0),
    "priority": lambda a: (a.priority,),
    "renewal": lambda a: (a.days_to_renewal is None, a.days_to_renewal or 0),
    "owner": lambda a: (a.owner is None, a.owner or ""),
}


@router.get("/portfolio", response_class=HTMLResponse)
def portfolio(
    request: Request, me: Me, segment: str = "", owner: str = "", bucket: str = "", priority: str = "",
    q: str = "", sort: str = "", page_number: Annotated[int, Query(alias="page")] = 1,
) -> Response:
    from pulsecheck.workflow.portfolio import build_portfolio, segments

    web = web_of(request)
    with web.transaction(me) as (session, _user):
        report = build_portfolio(session, web.now(), web.settings.priority.matrix(), segment or None)
        known_segments = segments(session)
    needle = q.strip().lower()
    rows = [
        a for a in report.at_risk
        if (not owner or a.owner == owner) and (not bucket or a.bucket == bucket)
        and (not priority or a.priority == priority)
        and (not needle or needle in a.name.lower() or needle in a.external_id.lower())
    ]
    if sort.lstrip("-") in SORTS:  # default: the report's own order (most urgent first)
        rows.sort(key=SORTS[sort.lstrip("-")], reverse=sort.startswith("-"))
    page_number = max(1, page_number)
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    shown = rows[(page_number - 1) * PAGE_SIZE: page_number * PAGE_SIZE]
    filters = {"segment": segment, "owner": owner, "bucket": bucket, "priority": priority, "q": q, "sort": sort}
    return page(request, "portfolio.html", report=report, rows=shown, total=len(rows), page_number=page_number,
                pages=pages, filters=filters, segments=known_segments)
