"""Portfolio review cycles: start (scope snapshot, scope findings, carried findings) and the transitions
submit, approve (with the seal), reject and close, each through the state machine's guards. Steps, findings and
decisions, the seal and the JSON shapes are in the sibling modules (steps, records, seal, views)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError, RefusedError
from pulsecheck.rules.priority import PriorityMatrix
from pulsecheck.states import cycle as machine
from pulsecheck.storage.models import (
    Account,
    CycleEvent,
    ReviewCycle,
    Ruleset,
    ScoreSnapshot,
    ScoringModelVersion,
    User,
)
from pulsecheck.timeutil import end_of_day, start_of_day
from pulsecheck.workflow.cycles.access import context, get_cycle
from pulsecheck.workflow.cycles.records import carry_findings, note_finding
from pulsecheck.workflow.cycles.seal import seal
from pulsecheck.workflow.users import get_user

if TYPE_CHECKING:
    from pulsecheck.config import Settings

SHOWN = 20  # account ids named in a finding's text before "and N more"
CYCLE_KEYS = ("decline_days", "decline_points", "sudden_change", "low_streak", "low_below", "renewal_days", "usage_kpi")


@dataclass(frozen=True)
class CycleSettings:
    """The `[cycle]` thresholds of the trends step, the priority matrix and the live model file."""

    decline_days: int = 30
    decline_points: float = 10.0
    sudden_change: float = 15.0
    low_streak: int = 3
    low_below: float | None = None  # default: the approved model's lowest bucket threshold
    renewal_days: int = 60
    usage_kpi: str = "usage"
    live_model: str | None = None
    priority: PriorityMatrix = field(default_factory=PriorityMatrix)
    tz: tzinfo = UTC

    @classmethod
    def from_settings(cls, settings: Settings) -> CycleSettings:
        """Built from validated `[cycle]`, `[priority]` and `[scoring] model`."""
        thresholds = settings.cycle.model_dump()
        return cls(**thresholds, live_model=settings.scoring.model, priority=settings.priority_matrix(), tz=settings.tz)

    def thresholds(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in CYCLE_KEYS}


# --- start ----------------------------------------------------------------------------------------


def start(
    session: Session,
    period: str,
    segments: Sequence[str],
    owner: str | None,
    actor: User,
    now: datetime,
    tz: tzinfo = UTC,
) -> ReviewCycle:
    """Open a draft cycle: snapshot the scope, the approved model, the active ruleset and the as-of moment."""
    first, last = machine.parse_period(period)
    if first > now.astimezone(tz).date():
        raise InputError(f"--period {period}: the period has not started yet")
    ctx = machine.Context(owner=owner or actor.name, actor=actor.name, actor_roles=frozenset(actor.role_set))
    state = machine.fire(machine.NEW, "start", ctx)
    owner_user = get_user(session, owner or actor.name, what="--owner")
    if not machine.may_own(owner_user.name, owner_user.role_set):
        raise InputError(f"--owner {owner_user.name}: neither a reviewer nor a manager")
    chosen = sorted(set(segments))
    known, in_scope = _in_scope(session, chosen)
    as_of = min(now, end_of_day(last, tz))
    model = session.scalar(select(ScoringModelVersion).where(ScoringModelVersion.status == "approved"))
    ruleset = session.scalar(select(Ruleset).where(Ruleset.active.is_(True)))
    cycle = ReviewCycle(
        period=period.strip().upper(),
        segments=chosen,
        owner=owner_user.name,
        state=state,
        as_of=as_of,
        model_id=model.id if model else None,
        ruleset_id=ruleset.id if ruleset else None,
        account_ids=[pk for pk, _, _ in in_scope],
        created_at=now,
    )
    session.add(cycle)
    session.flush()
    session.add(_start_event(cycle, actor.name, len(in_scope), now))
    _scope_findings(session, cycle, known, in_scope, start_of_day(first, tz), model, ruleset)
    carry_findings(session, cycle, actor.name, now)
    session.flush()
    return cycle


def _in_scope(session: Session, chosen: Sequence[str]) -> tuple[Counter[str], list[tuple[int, str, int | None]]]:
    """Accounts per known segment, and (id, external id, owner id) of each account in the chosen segments (all
    when none is chosen); an unknown segment is an input error, an empty scope is refused."""
    rows = session.execute(select(Account.id, Account.external_id, Account.segment, Account.owner_id)).all()
    known = Counter(segment for _, _, segment, _ in rows if segment)
    for segment in chosen:
        if segment not in known:
            raise InputError(f"--segment {segment!r}: unknown segment (known: {', '.join(sorted(known)) or 'none'})")
    in_scope = sorted((pk, ext, owner_id) for pk, ext, segment, owner_id in rows if not chosen or segment in chosen)
    if not in_scope:
        raise RefusedError("no account in scope: import accounts first (`pulsecheck accounts import FILE`)")
    return known, in_scope


def _start_event(cycle: ReviewCycle, actor: str, accounts: int, now: datetime) -> CycleEvent:
    """The first audit row: it names the period, the size of the scope and the as-of moment."""
    return CycleEvent(
        cycle_id=cycle.id,
        event="start",
        from_state=None,
        to_state=cycle.state,
        actor=actor,
        comment=f"period {cycle.period}, {accounts} account(s), as of {cycle.as_of:%Y-%m-%d %H:%M}",
        at=now,
    )


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def _scope_findings(
    session: Session,
    cycle: ReviewCycle,
    known: Mapping[str, int],
    in_scope: Sequence[tuple[int, str, int | None]],
    since: datetime,
    model: ScoringModelVersion | None,
    ruleset: Ruleset | None,
) -> None:
    if cycle.segments:
        for segment in sorted(set(known) - set(cycle.segments)):
            detail = f"segment {segment} has {known[segment]} account(s) but is not in scope"
            note_finding(session, cycle, "process", detail)
    no_owner = [ext for _, ext, owner_id in in_scope if owner_id is None]
    if no_owner:
        note_finding(
            session, cycle, "process", f"{len(no_owner)} account(s) in scope have no owner: {_listing(no_owner)}"
        )
    scored = set(
        session.scalars(
            select(ScoreSnapshot.account_id)
            .where(ScoreSnapshot.as_of >= since, ScoreSnapshot.as_of <= cycle.as_of)
            .distinct()
        )
    )
    unscored = [ext for pk, ext, _ in in_scope if pk not in scored]
    if unscored:
        note_finding(
            session,
            cycle,
            "data",
            f"{len(unscored)} account(s) in scope have no score snapshot in {cycle.period}: {_listing(unscored)}",
        )
    if model is None:
        note_finding(session, cycle, "scoring", "no approved scoring model when the cycle started")
    if ruleset is None:
        note_finding(session, cycle, "process", "no active ruleset when the cycle started")


# --- transitions ----------------------------------------------------------------------------------


def transition(
    session: Session, cycle_id: int, event: str, actor: User, now: datetime, comment: str | None = None
) -> ReviewCycle:
    """Fire submit/approve/reject/close as `actor`; approval seals the cycle with a digest."""
    cycle = get_cycle(session, cycle_id)
    ctx = context(session, cycle, actor, comment)
    before = cycle.state
    after = machine.fire(before, event, ctx)
    cycle.state = after
    if event == "approve":
        cycle.approver = actor.name
    elif event == "reject":
        cycle.approver, cycle.digest = None, None
    session.add(
        CycleEvent(
            cycle_id=cycle.id,
            event=event,
            from_state=before,
            to_state=after,
            actor=actor.name,
            comment=(comment or "").strip() or None,
            at=now,
        )
    )
    session.flush()
    if event == "approve":
        cycle = seal(session, cycle_id)
    return cycle
