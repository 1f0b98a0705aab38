"""Deviations as `deviations list` shows them, read on SQLAlchemy Core: a read command that imports no ORM (issue
17). `deviations` opens, resolves and accepts them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from pulsecheck.storage.more_tables import DEVIATIONS
from pulsecheck.storage.paging import Page, PageRequest, fetch_page
from pulsecheck.storage.tables import ACCOUNTS, USERS

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row
    from sqlalchemy.orm import Session

_DEV = DEVIATIONS.c
_ACC = ACCOUNTS.c
SORTS = {
    "newest": (_DEV.id.desc(),),
    "oldest": (_DEV.id,),
    "kind": (_DEV.kind, _DEV.id.desc()),
    "account": (_ACC.external_id, _DEV.id.desc()),
}


def deviation_page(
    db: Session | Connection,
    request: PageRequest,
    *,
    statuses: tuple[str, ...] | None = None,
    account_id: int | None = None,
    kind: str | None = None,
    owner: str | None = None,
) -> Page[dict[str, Any]]:
    """One page of deviations (newest first by default) in their JSON shape; `owner` keeps those of accounts
    that person owns."""
    query = select(DEVIATIONS, _ACC.external_id).outerjoin(ACCOUNTS, _ACC.id == _DEV.account_id)
    conditions: list[Any] = []
    if statuses is not None:
        conditions.append(_DEV.status.in_(statuses))
    if account_id is not None:
        conditions.append(_DEV.account_id == account_id)
    if kind:
        conditions.append(_DEV.kind == kind)
    if owner:
        owned = select(_ACC.id).join(USERS, USERS.c.id == _ACC.owner_id).where(USERS.c.name == owner)
        conditions.append(_DEV.account_id.in_(owned))
    count = select(_DEV.id).where(*conditions)
    page = fetch_page(db, query.where(*conditions), request, SORTS, scalars=False, count=count)
    return page.map(deviation_dict)


def deviation_dict(deviation: Row[Any]) -> dict[str, Any]:
    """The stable JSON shape of a deviation (a row of the deviations table with its account's `external_id`)."""
    return {
        "id": deviation.id,
        "account": deviation.external_id if deviation.account_id else None,
        "kind": deviation.kind,
        "subject": deviation.subject,
        "detail": deviation.detail,
        "status": deviation.status,
        "found_at": deviation.found_at.isoformat(),
        "accepted_by": deviation.accepted_by,
        "reason": deviation.reason,
        "accepted_until": deviation.accepted_until.isoformat() if deviation.accepted_until else None,
    }
