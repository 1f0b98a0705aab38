"""Accounts as the read commands show them (`accounts list`, `accounts show`, the account a review is about), read on
SQLAlchemy Core: a read command that imports no ORM (issue 17). Each function takes a connection or a session
(`Session.execute` runs a Core statement as a connection does), so that the web app shows the same data."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, select

from pulsecheck.errors import NotFoundError
from pulsecheck.scoring import trends
from pulsecheck.storage.paging import Page, PageRequest, fetch_page
from pulsecheck.storage.tables import ACCOUNTS, SCORE_SNAPSHOTS, USERS

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row
    from sqlalchemy.orm import Session

_ACC = ACCOUNTS.c
_SNAP = SCORE_SNAPSHOTS.c
_OWNER = USERS.alias("owner")
_MANAGER = USERS.alias("manager")
# Every column of an account and the names of its owner and manager (`owner`, `manager`): what `account_dict` reads.
_WITH_PEOPLE = select(ACCOUNTS, _OWNER.c.name.label("owner"), _MANAGER.c.name.label("manager")).select_from(
    ACCOUNTS.outerjoin(_OWNER, _OWNER.c.id == _ACC.owner_id).outerjoin(_MANAGER, _MANAGER.c.id == _ACC.manager_id)
)
SORTS = {
    "id": (_ACC.external_id,),
    "name": (_ACC.name, _ACC.external_id),
    "arr": (_ACC.arr.is_(None), _ACC.arr.desc(), _ACC.external_id),
    "renewal": (_ACC.renewal_date.is_(None), _ACC.renewal_date, _ACC.external_id),
    "score": (_SNAP.score.is_(None), _SNAP.score, _ACC.external_id),
}


class AccountColumns(Protocol):
    """What `account_dict` reads of an account: a row of the accounts table, or the mapped object."""

    @property
    def external_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def segment(self) -> str | None: ...
    @property
    def tier(self) -> str | None: ...
    @property
    def arr(self) -> float | None: ...
    @property
    def renewal_date(self) -> date | None: ...
    @property
    def contract_start(self) -> date | None: ...
    @property
    def stage(self) -> str | None: ...


def account_page(
    db: Session | Connection,
    request: PageRequest,
    *,
    segment: str | None = None,
    bucket: str | None = None,
    owner: str | None = None,
    tier: str | None = None,
    renewal_before: date | None = None,
) -> Page[dict[str, Any]]:
    """One page of accounts with their latest score and bucket, filtered and sorted in SQL."""
    newer = SCORE_SNAPSHOTS.alias("newer")
    latest = select(func.max(newer.c.as_of)).where(newer.c.account_id == _ACC.id).scalar_subquery()
    filters: list[Any] = []
    if segment:
        filters.append(_ACC.segment == segment)
    if tier:
        filters.append(_ACC.tier == tier)
    if owner:
        filters.append(_ACC.owner_id == select(USERS.c.id).where(USERS.c.name == owner).scalar_subquery())
    if renewal_before:
        filters.append(_ACC.renewal_date < renewal_before)
    joined = (
        _WITH_PEOPLE.add_columns(_SNAP.score, _SNAP.bucket)
        .outerjoin(SCORE_SNAPSHOTS, (_SNAP.account_id == _ACC.id) & (_SNAP.as_of == latest))
        .where(*filters)
    )
    if bucket:
        joined = joined.where(_SNAP.bucket == bucket)
    # Without a bucket filter the joins only add columns: count the accounts alone.
    count = None if bucket else select(_ACC.id).where(*filters)
    page = fetch_page(db, joined, request, SORTS, scalars=False, count=count)
    return page.map(lambda row: account_dict(row, row.owner, row.manager) | {"score": row.score, "bucket": row.bucket})


def find_account(db: Session | Connection, ref: str) -> Row[Any]:
    """The account `ref` names (its external id, else its internal numeric id): every column of it, and the names
    of its owner and manager (`owner`, `manager`); NotFoundError when there is none."""
    found = db.execute(_WITH_PEOPLE.where(_ACC.external_id == ref)).first()
    if found is None and ref.isascii() and ref.isdigit():
        found = db.execute(_WITH_PEOPLE.where(_ACC.id == int(ref))).first()
    if found is None:
        raise NotFoundError(f"unknown account {ref!r}")
    return found


def account_dict(account: AccountColumns, owner: str | None, manager: str | None) -> dict[str, Any]:
    """The stable JSON shape of an account, whose owner and manager are the users named `owner` and `manager`."""

    def iso(value: date | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": account.external_id,
        "name": account.name,
        "segment": account.segment,
        "tier": account.tier,
        "arr": account.arr,
        "owner": owner,
        "manager": manager,
        "renewal_date": iso(account.renewal_date),
        "contract_start": iso(account.contract_start),
        "stage": account.stage,
    }


def account_view(db: Session | Connection, ref: str, now: datetime, history: int = 12) -> dict[str, Any]:
    """The account `ref` names in its JSON shape with its score trend (`trend`: the newest `history` snapshots):
    what `accounts show` and the API's account show."""
    found = find_account(db, ref)
    return account_dict(found, found.owner, found.manager) | {"trend": account_trend(db, found.id, now, history)}


def account_trend(db: Session | Connection, account_id: int, now: datetime, limit: int = 12) -> dict[str, Any]:
    """Score history, sparkline, 30-day change and direction, and per-KPI contribution changes (why it moved)."""
    snapshots = db.execute(
        select(_SNAP.as_of, _SNAP.score, _SNAP.bucket, _SNAP.provisional, _SNAP.components)
        .where(_SNAP.account_id == account_id)
        .order_by(_SNAP.as_of)
    ).all()
    points = [(s.as_of, s.score) for s in snapshots]
    shown = snapshots[-limit:] if limit else snapshots
    changes: list[tuple[str, float]] = []
    previous = None
    if len(snapshots) >= 2:
        before, latest = snapshots[-2], snapshots[-1]
        changes = [c for c in contribution_changes(before.components, latest.components) if c[1]]
        if before.score is not None and latest.score is not None:
            previous = {
                "as_of": before.as_of.isoformat(),
                "score": before.score,
                "change": round(latest.score - before.score, 2),
            }
    return {
        "history": [
            {"as_of": s.as_of.isoformat(), "score": s.score, "bucket": s.bucket, "provisional": s.provisional}
            for s in shown
        ],
        "sparkline": trends.sparkline([s.score for s in shown], 0, 100),
        "change_30d": trends.score_change(points, now, 30) if points else None,
        "direction": trends.direction(points, now, 30) if points else "flat",
        "contribution_changes": changes,
        "previous": previous,
    }


def contribution_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """Per-KPI change in contribution between two snapshots' stored components, most negative first (the scoring
    rule of `scoring.compute.contribution_changes`, read from the stored dicts: no scoring model is imported)."""
    from pulsecheck.scoring.compute import Component
    from pulsecheck.scoring.compute import contribution_changes as changes

    def parts(components: list[dict[str, Any]]) -> list[Component]:
        return [
            Component(
                c["kpi"],
                c["raw"],
                c["normalized"],
                c["weight"],
                c["effective_weight"],
                c["contribution"],
                None,
                c["status"],
            )
            for c in components
        ]

    return changes(parts(before), parts(after))


def account_summary(db: Session | Connection, account_id: int) -> dict[str, Any]:
    """What a scorecard says of its account: id, name, segment, ARR, renewal date and owner."""
    row = db.execute(
        select(_ACC.external_id, _ACC.name, _ACC.segment, _ACC.arr, _ACC.renewal_date, _OWNER.c.name.label("owner"))
        .select_from(ACCOUNTS.outerjoin(_OWNER, _OWNER.c.id == _ACC.owner_id))
        .where(_ACC.id == account_id)
    ).one()
    return {
        "id": row.external_id,
        "name": row.name,
        "segment": row.segment,
        "arr": row.arr,
        "renewal_date": row.renewal_date.isoformat() if row.renewal_date else None,
        "owner": row.owner,
    }


def account_context(db: Session | Connection, account_id: int) -> dict[str, Any]:
    """What a reader of a review needs to know of its account (by internal id) now: id, name, segment, ARR, renewal
    date, owner, and the current score and bucket (its newest snapshot)."""
    newest = db.execute(
        select(_SNAP.as_of, _SNAP.score, _SNAP.bucket)
        .where(_SNAP.account_id == account_id)
        .order_by(_SNAP.as_of.desc())
        .limit(1)
    ).first()
    current = (
        {"as_of": newest.as_of.isoformat(), "score": newest.score, "bucket": newest.bucket}
        if newest is not None
        else {"as_of": None, "score": None, "bucket": None}
    )
    return account_summary(db, account_id) | {"current": current}
