"""What every cycle module reads and every change goes through: the cycle by id, its done steps and audit rows,
the guard on work in a draft, and the audit row that also bumps the cycle's version."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from pulsecheck.errors import NotFoundError, RefusedError
from pulsecheck.states import cycle as machine
from pulsecheck.storage.models import Account, CycleEvent, CycleStep, ReviewCycle, User
from pulsecheck.timeutil import start_of_day


def get_cycle(session: Session, cycle_id: int) -> ReviewCycle:
    """A cycle by id, or an input error naming it."""
    cycle = session.get(ReviewCycle, cycle_id)
    if cycle is None:
        raise NotFoundError(f"unknown cycle {cycle_id}")
    return cycle


def steps_of(session: Session, cycle_id: int) -> dict[str, CycleStep]:
    """The done steps of a cycle by name."""
    return {s.step: s for s in session.scalars(select(CycleStep).where(CycleStep.cycle_id == cycle_id))}


def events_of(session: Session, cycle_id: int) -> list[CycleEvent]:
    """The cycle's audit rows, oldest first."""
    return list(session.scalars(select(CycleEvent).where(CycleEvent.cycle_id == cycle_id).order_by(CycleEvent.id)))


def period_bounds(cycle: ReviewCycle, tz: tzinfo) -> tuple[datetime, datetime]:
    """The first moment of the cycle's period and its as-of moment."""
    first, _ = machine.parse_period(cycle.period)
    return start_of_day(first, tz), cycle.as_of


CHUNK = 500  # ids per IN (...) list: well under any database's limit on bound parameters


def account_names(session: Session, ids: Iterable[int] | None = None) -> dict[int, str]:
    """Account id → external id (results name accounts the way users do): of the accounts `ids` only, or of every
    account when `ids` is None (a page that names a few accounts never reads the whole portfolio)."""
    query = select(Account.id, Account.external_id)
    if ids is None:
        return {pk: ext for pk, ext in session.execute(query)}
    wanted = sorted(set(ids))
    names: dict[int, str] = {}
    for start in range(0, len(wanted), CHUNK):
        rows = session.execute(query.where(Account.id.in_(wanted[start : start + CHUNK])))
        names.update((pk, ext) for pk, ext in rows)
    return names


def context(session: Session, cycle: ReviewCycle, actor: User, comment: str | None = None) -> machine.Context:
    """What the state machine's guards decide on: the owner, the actor and the steps done so far."""
    return machine.Context(
        owner=cycle.owner,
        actor=actor.name,
        actor_roles=frozenset(actor.role_set),
        steps_done=frozenset(steps_of(session, cycle.id)),
        comment=comment,
        owner_manager=session.scalar(select(User.manager_name).where(User.name == cycle.owner)),
    )


def guard_work(session: Session, cycle: ReviewCycle, actor: User, what: str) -> None:
    """Refuse work on a cycle (a step, a finding, a decision) that is not a draft or not the actor's to do."""
    reason = machine.may_work(cycle.state, context(session, cycle, actor), what)
    if reason:
        raise RefusedError(reason)


def log(
    session: Session, cycle: ReviewCycle, event: str, actor: str, now: datetime, comment: str | None = None
) -> None:
    """One audit row; every change to a cycle also bumps its version (optimistic locking)."""
    session.add(
        CycleEvent(
            cycle_id=cycle.id,
            event=event,
            from_state=cycle.state,
            to_state=cycle.state,
            actor=actor,
            comment=comment,
            at=now,
        )
    )
    flag_modified(cycle, "segments")  # forces an UPDATE ... WHERE version_id = ?, so concurrent changes conflict
    session.flush()


def event_dict(e: CycleEvent) -> dict[str, Any]:
    """The JSON shape of one audit row (in `cycle show` and in the seal)."""
    return {
        "id": e.id,
        "event": e.event,
        "from": e.from_state,
        "to": e.to_state,
        "actor": e.actor,
        "comment": e.comment,
        "at": e.at.isoformat(),
    }
