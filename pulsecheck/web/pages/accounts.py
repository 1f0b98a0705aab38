"""`/accounts/{id}`: the account, its score history and KPI components, open escalations and reviews."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from pulsecheck.web.auth import Principal, signed_in
from pulsecheck.web.context import page, web_of

router = APIRouter()
Me = Annotated[Principal, Depends(signed_in)]


@router.get("/accounts/{ref}", response_class=HTMLResponse)
def show(request: Request, ref: str, me: Me) -> Response:
    from sqlalchemy import select

    from pulsecheck.storage.models import ScoreSnapshot
    from pulsecheck.workflow.accounts import account_dict, get_account
    from pulsecheck.workflow.deviations import list_deviations
    from pulsecheck.workflow.escalations import escalation_dict, list_escalations
    from pulsecheck.workflow.reviews import list_reviews
    from pulsecheck.workflow.scoring import account_trend

    web = web_of(request)
    with web.transaction(me) as (session, _user):
        account = get_account(session, ref)
        data = account_dict(account)
        trend = account_trend(session, account.id, web.now(), 24)
        latest = session.scalar(select(ScoreSnapshot).where(ScoreSnapshot.account_id == account.id)
                                .order_by(ScoreSnapshot.as_of.desc()).limit(1))
        components = list(latest.components or []) if latest else []
        escalations = [escalation_dict(e, web.now()) for e in list_escalations(session, True, account.id)]
        deviations = [(d.kind, d.subject, d.detail, d.status, d.found_at)
                      for d in list_deviations(session, open_only=True, account_id=account.id)]
        reviews = [(r.id, r.state, r.reviewer, r.approver, r.due_at) for r in list_reviews(session,
                                                                                           account_id=account.id)]
    return page(request, "account.html", account=data, trend=trend, components=components,
                latest=latest, escalations=escalations, reviews=reviews, deviations=deviations)
