"""Escalations as the read commands show them (`escalations list`), read on SQLAlchemy Core: a read command that
imports no ORM (issue 17). The filter, the urgency order and the JSON shape serve the services that write
(`escalations`: a bulk ack/resolve selects with the same filter) and the web app, which pass a session
(`Session.execute` runs a Core statement as a connection does)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from pulsecheck.storage.more_tables import ESCALATIONS
from pulsecheck.storage.paging import Page, PageRequest, fetch_by_key
from pulsecheck.storage.tables import ACCOUNTS

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row
    from sqlalchemy.orm import Session

    from pulsecheck.storage.more_models import Escalation

_ESC = ESCALATIONS.c

# Most urgent first; escalations from before priority scores sort after scored ones of their priority.
URGENCY = (_ESC.priority, func.coalesce(_ESC.priority_score, -1.0).desc(), _ESC.opened_at)
SORTS = {
    "priority": (*URGENCY, _ESC.id),  # within a priority, the highest priority score first
    "due": (_ESC.due_at.is_(None), _ESC.due_at, _ESC.id),
    "opened": (_ESC.opened_at.desc(), _ESC.id.desc()),
    "account": (_ESC.account_id, _ESC.id),
}
# Every column of an escalation and its account's external id (`external_id`): what `escalation_dict` reads.
_WITH_ACCOUNT = select(ESCALATIONS, ACCOUNTS.c.external_id).join(ACCOUNTS, ACCOUNTS.c.id == _ESC.account_id)


@dataclass(frozen=True)
class EscalationFilter:
    """Which escalations a list or a bulk ack/resolve means; None means any."""

    statuses: tuple[str, ...] | None = None
    account_id: int | None = None
    owner: str | None = None
    rule: str | None = None
    priority: str | None = None
    severity: str | None = None
    due_before: datetime | None = None

    def where(self) -> list[Any]:
        """The SQL conditions (on the escalations table: a mapped query of `Escalation` takes them as well)."""
        conditions: list[Any] = []
        if self.statuses is not None:
            conditions.append(_ESC.status.in_(self.statuses))
        for column, value in (
            (_ESC.account_id, self.account_id), (_ESC.owner, self.owner), (_ESC.rule_id, self.rule),
            (_ESC.priority, self.priority), (_ESC.severity, self.severity),
        ):  # fmt: skip
            if value is not None:
                conditions.append(column == value)
        if self.due_before is not None:
            conditions.append(_ESC.due_at < self.due_before)
        return conditions


def escalation_page(
    db: Session | Connection, request: PageRequest, chosen: EscalationFilter, now: datetime
) -> Page[dict[str, Any]]:
    """One page of escalations (most urgent first by default), in their JSON shape. The page is cut over the ids
    alone (deep offsets walk an index, not the skipped rows), then only its rows are read with their accounts."""
    def load(ids: list[int]) -> dict[int, Row[Any]]:
        return {row.id: row for row in db.execute(_WITH_ACCOUNT.where(_ESC.id.in_(ids)))}

    page = fetch_by_key(db, select(_ESC.id).where(*chosen.where()), request, SORTS, load)
    return page.map(lambda row: escalation_dict(row, row.external_id, now))


def escalation_dict(escalation: Row[Any] | Escalation, account: str, now: datetime) -> dict[str, Any]:
    """The stable JSON shape of an escalation (a row of its table, or the mapped object) of the account whose
    external id is `account`."""
    return {
        "id": escalation.id,
        "account": account,
        "rule": escalation.rule_id,
        "severity": escalation.severity,
        "priority": escalation.priority,
        "priority_score": escalation.priority_score,
        "reason": escalation.reason,
        "owner": escalation.owner,
        "level": escalation.level,
        "status": escalation.status,
        "review": escalation.review_id,
        "opened_at": escalation.opened_at.isoformat(),
        "due_at": escalation.due_at.isoformat() if escalation.due_at else None,
        "age_days": (now - escalation.opened_at).days,
    }
