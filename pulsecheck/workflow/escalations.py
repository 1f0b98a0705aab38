"""Escalations: one open per (account, rule), cooldown after resolution, acknowledge and resolve. How the read
commands show them (the list, its filter and order, the JSON shape) is `escalation_views`, on SQLAlchemy Core."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from pulsecheck.errors import InputError, NotFoundError, RefusedError
from pulsecheck.states import permissions
from pulsecheck.storage.bulk import among, insert_returning, table_of, transient
from pulsecheck.storage.hooks import written
from pulsecheck.storage.models import Escalation, User
from pulsecheck.workflow import escalation_views as views

# Read on Core in `escalation_views`; named here too for the callers that import them from this module (the web app).
from pulsecheck.workflow.escalation_views import URGENCY as URGENCY
from pulsecheck.workflow.escalation_views import EscalationFilter as EscalationFilter
from pulsecheck.workflow.escalation_views import escalation_page as escalation_page


def dedupe_key(account_id: int, rule_id: str) -> str:
    """The key that keeps one open escalation per account and rule."""
    return f"{account_id}:{rule_id}"


def open_escalation(session: Session, account_id: int, rule_id: str) -> Escalation | None:
    """The open (or acknowledged) escalation of a rule for an account."""
    return session.scalar(select(Escalation).where(Escalation.dedupe_key == dedupe_key(account_id, rule_id)))


def in_cooldown(session: Session, account_id: int, rule_id: str, now: datetime, cooldown: timedelta | None) -> bool:
    """True while the last resolution of this (account, rule) is more recent than `cooldown`."""
    if not cooldown:
        return False
    last = session.scalar(
        select(Escalation.resolved_at)
        .where(Escalation.account_id == account_id, Escalation.rule_id == rule_id, Escalation.status == "resolved")
        .order_by(Escalation.resolved_at.desc())
        .limit(1)
    )
    return last is not None and now - last < cooldown


def create(
    session: Session,
    account_id: int,
    rule_id: str,
    severity: str,
    priority: str,
    reason: str,
    owner: str | None,
    due_at: datetime | None,
    now: datetime,
    review_id: int | None = None,
) -> Escalation:
    """Open a new escalation (the caller has checked dedupe and cooldown)."""
    escalation = Escalation(
        account_id=account_id,
        review_id=review_id,
        rule_id=rule_id,
        severity=severity,
        priority=priority,
        reason=reason,
        owner=owner,
        level=0,
        due_at=due_at,
        opened_at=now,
        status="open",
        dedupe_key=dedupe_key(account_id, rule_id),
    )
    session.add(escalation)
    session.flush()
    return escalation


def last_resolutions(
    session: Session, account_ids: Collection[int], rule_ids: Collection[str]
) -> dict[tuple[int, str], datetime]:
    """When each (account, rule) of these last had an escalation resolved (what `in_cooldown` asks, in one query)."""
    if not account_ids or not rule_ids:
        return {}
    found = session.execute(_LAST_RESOLUTIONS, {"accounts": sorted(account_ids), "rules": sorted(rule_ids)})
    return {(account, rule): last for account, rule, last in found if last is not None}


_TABLE = table_of(Escalation)
_LAST_RESOLUTIONS = (  # built once, its lists bound at execution (a batch of the evaluator asks it)
    select(_TABLE.c.account_id, _TABLE.c.rule_id, func.max(_TABLE.c.resolved_at))
    .where(
        among(_TABLE.c.account_id, "accounts"),
        among(_TABLE.c.rule_id, "rules"),
        _TABLE.c.status == "resolved",
    )
    .group_by(_TABLE.c.account_id, _TABLE.c.rule_id)
)


def cooling(last: datetime | None, now: datetime, cooldown: timedelta | None) -> bool:
    """True while a resolution at `last` is more recent than `cooldown`."""
    return cooldown is not None and last is not None and now - last < cooldown


def create_many(session: Session, opening: Sequence[dict[str, Any]], now: datetime) -> list[Escalation]:
    """Open new escalations in bulk (the caller has checked dedupe and cooldown), one per mapping of account_id,
    rule_id, severity, priority, reason, owner, due_at and review_id; returns them with their ids, in order. They
    reach the commit hooks (audit chain, ladder jobs) as `create` would have."""
    rows = [
        dict(row, level=0, opened_at=now, status="open", acknowledged_by=None, resolved_at=None,
             dedupe_key=dedupe_key(row["account_id"], row["rule_id"]))
        for row in opening
    ]  # fmt: skip
    ids = {key: new_id for new_id, key in insert_returning(session, Escalation, rows, "dedupe_key")}
    created = transient(Escalation, [dict(row, id=ids[row["dedupe_key"]]) for row in rows])
    written(session, created)
    return created


def get(session: Session, escalation_id: int) -> Escalation:
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        raise NotFoundError(f"unknown escalation {escalation_id}")
    return escalation


def acknowledge(session: Session, escalation_id: int, user: User, now: datetime) -> Escalation:
    """The owner (or a manager) takes an open escalation; the ladder stops climbing."""
    escalation = get(session, escalation_id)
    if escalation.status != "open":
        raise RefusedError(f"escalation {escalation_id} is {escalation.status}, not open")
    _may_act(session, escalation, user, "escalation.ack")
    escalation.status, escalation.acknowledged_by = "acknowledged", user.name
    session.flush()
    return escalation


def resolve(session: Session, escalation_id: int, user: User | None, now: datetime) -> Escalation:
    """Close an escalation (a person, or the evaluator when the rule stops matching)."""
    escalation = get(session, escalation_id)
    if escalation.status == "resolved":
        raise RefusedError(f"escalation {escalation_id} is already resolved")
    if user is not None:
        _may_act(session, escalation, user, "escalation.resolve")
    close(escalation, now)
    session.flush()
    return escalation


def close(escalation: Escalation, now: datetime) -> None:
    """Mark a loaded escalation resolved at `now` (its dedupe key freed for a later one); written at the next flush."""
    escalation.status, escalation.resolved_at, escalation.dedupe_key = "resolved", now, None


def _may_act(session: Session, escalation: Escalation, user: User, action: str) -> None:
    """Refused unless the permission table lets `user` take `action` on this escalation."""
    owner_manager = session.scalar(select(User.manager_name).where(User.name == escalation.owner))
    parties = {"its_owner": escalation.owner}
    managers = {escalation.owner: owner_manager} if escalation.owner else {}
    who = permissions.actor(user.name, user.role_set, parties, managers)
    reason = permissions.refusal(action, who)
    if reason:
        raise RefusedError(reason)


def list_escalations(session: Session, open_only: bool = False, account_id: int | None = None) -> list[Escalation]:
    """Escalations, most urgent first: by priority, then by priority score (highest first), then oldest first."""
    query = select(Escalation).options(joinedload(Escalation.account)).order_by(*URGENCY)
    if open_only:
        query = query.where(Escalation.status != "resolved")
    if account_id is not None:
        query = query.where(Escalation.account_id == account_id)
    return list(session.scalars(query))


def matching(session: Session, ids: Sequence[int], chosen: EscalationFilter | None) -> list[int]:
    """The ids a bulk ack/resolve acts on: `ids` as given (each must exist), else those `chosen` selects."""
    if ids:
        for escalation_id in ids:
            get(session, escalation_id)
        return list(dict.fromkeys(ids))
    if chosen is None:
        raise InputError("name escalation IDs or a filter (--mine, --owner, --rule, --account)")
    return list(session.scalars(select(Escalation.id).where(*chosen.where()).order_by(Escalation.id)))


def escalation_dict(escalation: Escalation, now: datetime) -> dict[str, Any]:
    """The stable JSON shape of a mapped escalation (`escalation_views.escalation_dict`, with its account's external
    id), for a caller that holds the object."""
    return views.escalation_dict(escalation, escalation.account.external_id, now)
