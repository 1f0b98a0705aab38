"""`/accounts/{id}`: the account's scorecard (the scorecard service's, as `pulsecheck scorecard` shows it: score
history chart, group subscores, KPIs coloured by concern and strength), open escalations, reviews, deviations and
the attachments of its reviews and submitted scorecards."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from pulsecheck.web.auth import Principal, signed_in
from pulsecheck.web.context import page, web_of
from pulsecheck.web.nav import nav_counts

router = APIRouter()
Me = Annotated[Principal, Depends(signed_in)]
HISTORY = 24  # snapshots on the chart and in the history table
RATED = ("concern", "strength")


@router.get("/accounts/{ref}", response_class=HTMLResponse)
def show(request: Request, ref: str, me: Me) -> Response:
    from pulsecheck.errors import RefusedError
    from pulsecheck.web.chart import history_chart
    from pulsecheck.workflow.accounts import account_dict, get_account
    from pulsecheck.workflow.deviations import open_rows
    from pulsecheck.workflow.escalations import escalation_dict, list_escalations
    from pulsecheck.workflow.reviews import review_rows
    from pulsecheck.workflow.scorecards import scorecard

    web = web_of(request)
    with web.transaction(me) as (session, _user):
        account = get_account(session, ref, people=True)
        data = account_dict(account)
        try:
            card: dict[str, Any] | None = scorecard(session, account, None, HISTORY)
        except RefusedError:  # no snapshot yet
            card = None
        escalations = [escalation_dict(e, web.now()) for e in list_escalations(session, True, account.id)]
        deviations = open_rows(session, account.id)
        reviews = review_rows(session, account.id)
        files = _attachments(session, account.external_id, account.id, [r[0] for r in reviews])
        nav = nav_counts(web, me.name, session)
    chart = history_chart(card["history"], card["groups"], web.settings.tz) if card else None
    return page(request, "account.html", nav=nav, account=data, card=_shown(card), chart=chart, escalations=escalations,
                reviews=reviews, deviations=deviations, attachments=files)


def _shown(card: dict[str, Any] | None) -> dict[str, Any] | None:
    """The scorecard with what the page draws: each KPI's status class and the model's colours as safe SVG fills
    (the CSP allows no `style` attribute; an SVG `fill` is not one)."""
    from pulsecheck.scoring.colors import safe_color

    if card is None:
        return None
    kpis = [k | {"css": f"kpi-{k['rating'] if k['rating'] in RATED else 'neutral'}",
                 "fill": safe_color(k["color"]) if k["color"] else None} for k in card["kpis"]]
    fill = safe_color(card["bucket_color"]) if card["bucket_color"] else None
    return card | {"kpis": kpis, "bucket_fill": fill, "history": list(reversed(card["history"]))}


def _attachments(session: Any, external_id: str, account_id: int, review_ids: list[int]) -> list[dict[str, Any]]:
    """The files attached to the account's reviews and submitted scorecards, each with where to download it."""
    from urllib.parse import quote

    from pulsecheck.workflow import attachments, scorecard_approvals

    reviews = attachments.links_of_records(session, attachments.REVIEW, review_ids)
    cards = scorecard_approvals.record_ids_of(session, account_id)
    submitted = attachments.links_of_records(session, scorecard_approvals.KIND, cards)
    sizes = attachments.sizes_of(session, reviews + submitted)
    shown = [(f"review {k.record_id}", f"/reviews/{k.record_id}/attachments/{k.number}", k) for k in reviews]
    shown += [(f"scorecard {k.record_id}",
               f"/accounts/{quote(external_id, safe='')}/scorecards/{k.record_id}/attachments/{k.number}", k)
              for k in submitted]
    return [{"of": of, "href": href, "filename": k.filename, "note": k.note, "size": sizes.get(k.sha256),
             "added_by": k.added_by, "added_at": k.added_at} for of, href, k in shown]


@router.get("/accounts/{ref}/scorecards/{scorecard_id}/attachments/{number}")
def download(request: Request, ref: str, scorecard_id: int, number: int, me: Me) -> Response:
    """A submitted scorecard's attached file, always as a download (never rendered in this origin)."""
    from pulsecheck.errors import NotFoundError
    from pulsecheck.web.download import OCTETS
    from pulsecheck.web.download import download as send
    from pulsecheck.workflow import attachments, scorecard_approvals
    from pulsecheck.workflow.accounts import get_account

    web = web_of(request)
    with web.transaction(me) as (session, _user):
        account = get_account(session, ref)
        if scorecard_id not in {row.id for row in scorecard_approvals.records_of(session, account.id)}:
            raise NotFoundError(f"account {account.external_id} has no scorecard {scorecard_id}")
        what = f"scorecard {scorecard_id}"
        link, content = attachments.content(session, scorecard_approvals.KIND, scorecard_id, number, what)
        filename = link.filename
    return send(content, filename, OCTETS)
