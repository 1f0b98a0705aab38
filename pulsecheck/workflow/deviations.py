"""Deviations: data and model findings with an open → accepted → resolved life cycle. How `deviations list` shows
them is `deviation_views`, on Core."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError, NotFoundError, RefusedError
from pulsecheck.states import permissions
from pulsecheck.storage.bulk import insert_many
from pulsecheck.storage.models import Account, Deviation, User

Key = tuple[int | None, str, str]  # (account_id, kind, subject): one live deviation per cause


def sync(
    session: Session,
    found: dict[Key, str],
    kinds: Iterable[str],
    now: datetime,
    scope: set[int] | None = None,
) -> dict[str, int]:
    """Make live deviations of `kinds` match `found` (key → detail) within `scope` accounts (None: all).

    New causes open a deviation; causes gone away resolve theirs; an acceptance past its date reopens.
    """
    kinds = tuple(kinds)
    query = select(Deviation).where(Deviation.kind.in_(kinds), Deviation.status != "resolved")
    if scope is not None:  # a shard's block of accounts reads its own deviations, not every live one: a range
        # (one index range scan, two parameters, where an IN list of a block's 2,000 ids was sent and parsed on
        # every block); ids in it but outside `scope` are skipped below
        query = query.where(Deviation.account_id.between(min(scope, default=0), max(scope, default=-1)))
    live = session.scalars(query)
    counts = {"opened": 0, "resolved": 0, "reopened": 0}
    seen: set[Key] = set()
    for deviation in live:
        key = (deviation.account_id, deviation.kind, deviation.subject)
        if scope is not None and deviation.account_id not in scope:
            continue
        if key not in found:
            deviation.status, deviation.resolved_at = "resolved", now
            counts["resolved"] += 1
            continue
        seen.add(key)
        deviation.detail, deviation.last_seen_at = found[key], now
        if deviation.status == "accepted" and deviation.accepted_until and deviation.accepted_until < now.date():
            deviation.status = "open"
            counts["reopened"] += 1
    fresh = [
        {
            "account_id": account_id,
            "kind": kind,
            "subject": subject,
            "detail": detail,
            "found_at": now,
            "last_seen_at": now,
            "status": "open",
        }
        for (account_id, kind, subject), detail in found.items()
        if (account_id, kind, subject) not in seen
    ]
    insert_many(session, Deviation, fresh)  # one executemany of the driver's tuples (the ORM's cost more per row)
    counts["opened"] = len(fresh)
    session.flush()
    return counts


def list_deviations(
    session: Session, open_only: bool = False, account_id: int | None = None, kind: str | None = None
) -> list[Deviation]:
    """Deviations, newest first; `open_only` keeps open and accepted ones."""
    query = select(Deviation).order_by(Deviation.id.desc())
    if open_only:
        query = query.where(Deviation.status != "resolved")
    if account_id is not None:
        query = query.where(Deviation.account_id == account_id)
    if kind:
        query = query.where(Deviation.kind == kind)
    return list(session.scalars(query))


def open_rows(session: Session, account_id: int) -> list[tuple[str, str, str, str, datetime]]:
    """(kind, subject, detail, status, found_at) of `list_deviations(open_only=True, account_id=...)`, in its
    order, as plain rows (what the account page lists)."""
    query = (
        select(Deviation.kind, Deviation.subject, Deviation.detail, Deviation.status, Deviation.found_at)
        .where(Deviation.status != "resolved", Deviation.account_id == account_id)
        .order_by(Deviation.id.desc())
    )
    return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def accept(session: Session, deviation_id: int, user: User, reason: str, until: date, now: datetime) -> Deviation:
    """A manager accepts a deviation until a date; if its cause persists after that, it reopens."""
    deviation = session.get(Deviation, deviation_id)
    if deviation is None:
        raise NotFoundError(f"unknown deviation {deviation_id}")
    refused = permissions.refusal("deviation.accept", permissions.actor(user.name, user.role_set))
    if refused:
        raise RefusedError(refused)
    if deviation.status == "resolved":
        raise RefusedError(f"deviation {deviation_id} is already resolved")
    if not reason.strip():
        raise InputError("--reason is empty")
    if until <= now.date():
        raise InputError(f"--until {until}: must be in the future")
    deviation.status, deviation.accepted_by, deviation.reason = "accepted", user.name, reason.strip()
    deviation.accepted_until = until
    session.flush()
    return deviation


def account_names(session: Session) -> dict[int, str]:
    """Account id → external id, for rendering."""
    return {pk: ext for pk, ext in session.execute(select(Account.id, Account.external_id))}
