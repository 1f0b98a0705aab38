"""What every change to a cycle goes through: the mapped cycle by id, the guard on work in a draft, and the audit
row that also bumps the cycle's version. What they read of a cycle's steps and audit rows is `reading`'s."""

from __future__ import annotations

from datetime import datetime, tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from pulsecheck.errors import NotFoundError, RefusedError
from pulsecheck.states import cycle as machine
from pulsecheck.storage.models import CycleEvent, ReviewCycle, User
from pulsecheck.timeutil import start_of_day
from pulsecheck.workflow.cycles.reading import account_names as account_names  # bench/cycle.py's import
from pulsecheck.workflow.cycles.reading import steps_of


def get_cycle(session: Session, cycle_id: int) -> ReviewCycle:
    """A cycle by id, or an input error naming it."""
    cycle = session.get(ReviewCycle, cycle_id)
    if cycle is None:
        raise NotFoundError(f"unknown cycle {cycle_id}")
    return cycle


def period_bounds(cycle: ReviewCycle, tz: tzinfo) -> tuple[datetime, datetime]:
    """The first moment of the cycle's period and its as-of moment."""
    first, _ = machine.parse_period(cycle.period)
    return start_of_day(first, tz), cycle.as_of


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
