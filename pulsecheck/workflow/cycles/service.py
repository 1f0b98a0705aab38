"""Portfolio review cycles: start (scope snapshot, scope findings, carried findings), the SOP's seven steps,
findings, decisions, approval with a seal, verification, and the cycle's JSON shape (documented in README)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from pulsecheck.errors import InputError, NotFoundError, RefusedError
from pulsecheck.rules.priority import PriorityMatrix
from pulsecheck.states import cycle as machine
from pulsecheck.storage.models import (
    Account,
    CycleDecision,
    CycleEvent,
    CycleFinding,
    CycleStep,
    Escalation,
    ReviewCycle,
    Ruleset,
    ScoreSnapshot,
    ScoringModelVersion,
    User,
)
from pulsecheck.timeutil import end_of_day, start_of_day
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
        return cls(**thresholds, live_model=settings.scoring.model, priority=settings.priority.matrix(), tz=settings.tz)

    def thresholds(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in CYCLE_KEYS}


# --- reading --------------------------------------------------------------------------------------


def get_cycle(session: Session, cycle_id: int) -> ReviewCycle:
    """A cycle by id, or an input error naming it."""
    cycle = session.get(ReviewCycle, cycle_id)
    if cycle is None:
        raise NotFoundError(f"unknown cycle {cycle_id}")
    return cycle


def steps_of(session: Session, cycle_id: int) -> dict[str, CycleStep]:
    """The done steps of a cycle by name."""
    return {s.step: s for s in session.scalars(select(CycleStep).where(CycleStep.cycle_id == cycle_id))}


def findings_of(session: Session, cycle_id: int) -> list[CycleFinding]:
    query = select(CycleFinding).where(CycleFinding.cycle_id == cycle_id).order_by(CycleFinding.id)
    return list(session.scalars(query))


def decisions_of(session: Session, cycle_id: int) -> list[CycleDecision]:
    query = select(CycleDecision).where(CycleDecision.cycle_id == cycle_id).order_by(CycleDecision.id)
    return list(session.scalars(query))


def events_of(session: Session, cycle_id: int) -> list[CycleEvent]:
    return list(session.scalars(select(CycleEvent).where(CycleEvent.cycle_id == cycle_id).order_by(CycleEvent.id)))


def list_cycles(session: Session, state: str | None = None) -> list[ReviewCycle]:
    """Cycles, newest first."""
    if state is not None and state not in machine.STATES:
        raise InputError(f"--state {state!r}: choose from {', '.join(machine.STATES)}")
    query = select(ReviewCycle).order_by(ReviewCycle.id.desc())
    return list(session.scalars(query.where(ReviewCycle.state == state) if state else query))


def period_bounds(cycle: ReviewCycle, tz: tzinfo) -> tuple[datetime, datetime]:
    """The first moment of the cycle's period and its as-of moment."""
    first, _ = machine.parse_period(cycle.period)
    return start_of_day(first, tz), cycle.as_of


# --- helpers --------------------------------------------------------------------------------------


def _names(session: Session) -> dict[int, str]:
    return {pk: ext for pk, ext in session.execute(select(Account.id, Account.external_id))}


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def _ctx(session: Session, cycle: ReviewCycle, actor: User, comment: str | None = None) -> machine.Context:
    return machine.Context(
        owner=cycle.owner,
        actor=actor.name,
        actor_roles=frozenset(actor.role_set),
        steps_done=frozenset(steps_of(session, cycle.id)),
        comment=comment,
    )


def _log(
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


def _guard_work(session: Session, cycle: ReviewCycle, actor: User, what: str) -> None:
    reason = machine.may_work(cycle.state, _ctx(session, cycle, actor), what)
    if reason:
        raise RefusedError(reason)


def _finding(
    session: Session, cycle: ReviewCycle, kind: str, detail: str, carried_from: CycleFinding | None = None
) -> CycleFinding | None:
    """Record a finding the system found, unless the same one is already open in this cycle."""
    open_same = session.scalar(
        select(CycleFinding.id).where(
            CycleFinding.cycle_id == cycle.id,
            CycleFinding.kind == kind,
            CycleFinding.detail == detail,
            CycleFinding.status == "open",
        )
    )
    if open_same is not None:
        return None
    finding = CycleFinding(
        cycle_id=cycle.id,
        kind=kind,
        detail=detail,
        corrective_action=carried_from.corrective_action if carried_from else None,
        owner=carried_from.owner if carried_from else None,
        due=carried_from.due if carried_from else None,
        status="open",
        carried_from=carried_from.id if carried_from else None,
    )
    session.add(finding)
    return finding


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
    if not owner_user.role_set & machine.RUNNER_ROLES:
        raise InputError(f"--owner {owner_user.name}: neither a reviewer nor a manager")
    rows = session.execute(select(Account.id, Account.external_id, Account.segment, Account.owner_id)).all()
    known = Counter(segment for _, _, segment, _ in rows if segment)
    chosen = sorted(set(segments))
    for segment in chosen:
        if segment not in known:
            raise InputError(f"--segment {segment!r}: unknown segment (known: {', '.join(sorted(known)) or 'none'})")
    in_scope = sorted((pk, ext, owner_id) for pk, ext, segment, owner_id in rows if not chosen or segment in chosen)
    if not in_scope:
        raise RefusedError("no account in scope: import accounts first (`pulsecheck accounts import FILE`)")
    as_of = min(now, end_of_day(last, tz))
    since = start_of_day(first, tz)
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
    session.add(
        CycleEvent(
            cycle_id=cycle.id,
            event="start",
            from_state=None,
            to_state=cycle.state,
            actor=actor.name,
            comment=f"period {cycle.period}, {len(in_scope)} account(s), as of {as_of:%Y-%m-%d %H:%M}",
            at=now,
        )
    )
    _scope_findings(session, cycle, known, in_scope, since, model, ruleset)
    _carry_findings(session, cycle, actor.name, now)
    session.flush()
    return cycle


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
            _finding(session, cycle, "process", detail)
    no_owner = [ext for _, ext, owner_id in in_scope if owner_id is None]
    if no_owner:
        _finding(session, cycle, "process", f"{len(no_owner)} account(s) in scope have no owner: {_listing(no_owner)}")
    scored = set(
        session.scalars(
            select(ScoreSnapshot.account_id)
            .where(ScoreSnapshot.as_of >= since, ScoreSnapshot.as_of <= cycle.as_of)
            .distinct()
        )
    )
    unscored = [ext for pk, ext, _ in in_scope if pk not in scored]
    if unscored:
        _finding(
            session,
            cycle,
            "data",
            f"{len(unscored)} account(s) in scope have no score snapshot in {cycle.period}: {_listing(unscored)}",
        )
    if model is None:
        _finding(session, cycle, "scoring", "no approved scoring model when the cycle started")
    if ruleset is None:
        _finding(session, cycle, "process", "no active ruleset when the cycle started")


def _carry_findings(session: Session, cycle: ReviewCycle, actor: str, now: datetime) -> None:
    """Open findings with a corrective action in the previous cycle of the same scope carry into this one."""
    previous = next(
        (
            c
            for c in session.scalars(
                select(ReviewCycle).where(ReviewCycle.id != cycle.id).order_by(ReviewCycle.id.desc())
            )
            if sorted(c.segments) == cycle.segments
        ),
        None,
    )
    if previous is None:
        return
    carried = [
        _finding(session, cycle, f.kind, f.detail, carried_from=f)
        for f in findings_of(session, previous.id)
        if f.status == "open" and (f.corrective_action or "").strip()
    ]
    if any(carried):
        session.flush()
        ids = ", ".join(f"#{f.carried_from}" for f in carried if f)
        text = f"{len(carried)} open finding(s) carried from cycle {previous.id}: {ids}"
        _log(session, cycle, "carry", actor, now, text)


# --- steps ----------------------------------------------------------------------------------------


# --- findings and decisions -----------------------------------------------------------------------


def add_finding(
    session: Session,
    cycle_id: int,
    kind: str,
    detail: str,
    actor: User,
    now: datetime,
    action: str | None = None,
    owner: str | None = None,
    due: Any = None,
) -> CycleFinding:
    """Record a finding or non-conformance, optionally with a corrective action, its owner and due date."""
    if kind not in machine.FINDING_KINDS:
        raise InputError(f"--kind {kind!r}: choose from {', '.join(machine.FINDING_KINDS)}")
    if not detail.strip():
        raise InputError("--detail is empty")
    if owner is not None:
        get_user(session, owner, what="--owner")
    if (owner or due) and not (action or "").strip():
        raise InputError("--owner and --due belong to a corrective action: pass --action TEXT too")
    cycle = get_cycle(session, cycle_id)
    _guard_work(session, cycle, actor, "add a finding")
    finding = CycleFinding(
        cycle_id=cycle.id,
        kind=kind,
        detail=detail.strip(),
        corrective_action=(action or "").strip() or None,
        owner=owner,
        due=due,
        status="open",
    )
    session.add(finding)
    session.flush()
    _log(session, cycle, "finding", actor.name, now, f"#{finding.id} added ({kind}): {finding.detail}")
    return finding


def close_finding(session: Session, finding_id: int, note: str, actor: User, now: datetime) -> CycleFinding:
    """Close an open finding with a note (in a draft cycle)."""
    finding = session.get(CycleFinding, finding_id)
    if finding is None:
        raise NotFoundError(f"unknown finding {finding_id}")
    if not note.strip():
        raise InputError("--note is empty")
    cycle = get_cycle(session, finding.cycle_id)
    _guard_work(session, cycle, actor, f"close finding {finding_id}")
    if finding.status != "open":
        raise RefusedError(f"finding {finding_id} is already {finding.status}")
    finding.status, finding.close_note = "closed", note.strip()
    _log(session, cycle, "finding", actor.name, now, f"#{finding.id} closed: {finding.close_note}")
    return finding


def decide(
    session: Session,
    cycle_id: int,
    account_ref: str,
    decision: str,
    owner: str,
    reason: str | None,
    actor: User,
    now: datetime,
) -> CycleDecision:
    """Record what happens to one account in scope: `monitor` (with a reason) or `escalate` (opens one)."""
    from pulsecheck.workflow import escalations as escalation
    from pulsecheck.workflow.accounts import get_account

    if decision not in machine.DECISIONS:
        raise InputError(f"decision {decision!r}: choose from {', '.join(machine.DECISIONS)}")
    cycle = get_cycle(session, cycle_id)
    account = get_account(session, account_ref)
    if account.id not in set(cycle.account_ids):
        raise InputError(f"account {account.external_id} is not in the scope of cycle {cycle.id}")
    get_user(session, owner, what="--owner")
    text = (reason or "").strip() or None
    if decision == "monitor" and text is None:
        raise InputError("--reason is required for a monitor decision")
    _guard_work(session, cycle, actor, f"decide on {account.external_id}")
    done = steps_of(session, cycle.id)
    stale = [s for s in ("escalate", *machine.cleared_by_redo("escalate", done)) if s in done]
    if stale:  # the escalate step recorded the decisions as they were: it runs again after this one
        session.execute(delete(CycleStep).where(CycleStep.cycle_id == cycle.id, CycleStep.step.in_(stale)))
        _log(session, cycle, "redo", actor.name, now, f"decision on {account.external_id}; cleared: {', '.join(stale)}")
    if decision == "escalate":
        classified = _classified(session, cycle).get(account.external_id, {})
        rule = f"cycle-{cycle.id}"
        if escalation.open_escalation(session, account.id, rule) is None:
            escalation.create(
                session,
                account.id,
                rule,
                classified.get("risk_level", "high"),
                classified.get("priority", "P2"),
                text or f"escalated by review cycle {cycle.id}",
                owner,
                None,
                now,
            )
    row = session.scalar(
        select(CycleDecision).where(CycleDecision.cycle_id == cycle.id, CycleDecision.account_id == account.id)
    )
    if row is None:
        row = CycleDecision(cycle_id=cycle.id, account_id=account.id, decision=decision, owner=owner, decided_at=now)
        session.add(row)
    row.decision, row.owner, row.reason, row.decided_at = decision, owner, text, now
    _log(session, cycle, "decide", actor.name, now, f"{account.external_id}: {decision} by {owner}")
    return row


def _classified(session: Session, cycle: ReviewCycle) -> dict[str, dict[str, Any]]:
    step = steps_of(session, cycle.id).get("classify")
    return {a["account"]: a for a in step.result.get("at_risk", [])} if step else {}


# --- approval, seal, verify -----------------------------------------------------------------------


def transition(
    session: Session, cycle_id: int, event: str, actor: User, now: datetime, comment: str | None = None
) -> ReviewCycle:
    """Fire submit/approve/reject/close as `actor`; approval seals the cycle with a digest."""
    cycle = get_cycle(session, cycle_id)
    ctx = _ctx(session, cycle, actor, comment)
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
        session.expire_all()  # seal what the database holds, exactly as `verify` will read it back
        cycle = get_cycle(session, cycle_id)
        cycle.digest = machine.seal_digest(sealed_content(session, cycle))
        session.flush()
    return cycle


def sealed_content(session: Session, cycle: ReviewCycle) -> dict[str, Any]:
    """What the seal covers: the cycle's snapshot, steps, findings, decisions and audit rows up to approval."""
    events = events_of(session, cycle.id)
    approvals = [e.id for e in events if e.event == "approve"]
    upto = approvals[-1] if approvals else None
    return {
        "cycle": {
            "id": cycle.id,
            "period": cycle.period,
            "segments": cycle.segments,
            "owner": cycle.owner,
            "approver": cycle.approver,
            "as_of": cycle.as_of,
            "created_at": cycle.created_at,
            "model_id": cycle.model_id,
            "ruleset_id": cycle.ruleset_id,
            "account_ids": cycle.account_ids,
        },
        "steps": [
            {
                "step": s.step,
                "done_by": s.done_by,
                "done_at": s.done_at,
                "note": s.note,
                "evidence": s.evidence,
                "result": s.result,
            }
            for s in sorted(steps_of(session, cycle.id).values(), key=lambda s: machine.STEPS.index(s.step))
        ],
        "findings": [_finding_dict(f) for f in findings_of(session, cycle.id)],
        "decisions": [
            {
                "account_id": d.account_id,
                "decision": d.decision,
                "owner": d.owner,
                "reason": d.reason,
                "decided_at": d.decided_at,
            }
            for d in decisions_of(session, cycle.id)
        ],
        "events": [_event_dict(e) for e in events if upto is not None and e.id <= upto],
    }


def verify(session: Session, cycle: ReviewCycle) -> list[str]:
    """Problems: content changed since the seal, a missing seal, or an audit trail that does not explain the state."""
    problems: list[str] = []
    if cycle.state in ("approved", "closed") and not cycle.digest:
        problems.append(f"cycle {cycle.id} is {cycle.state} but has no seal")
    if cycle.digest:
        now_digest = machine.seal_digest(sealed_content(session, cycle))
        if now_digest != cycle.digest:
            problems.append(
                f"content changed after approval: sealed sha256 {cycle.digest[:16]}…, now {now_digest[:16]}…"
            )
    try:
        replayed = machine.replay(
            [(e.event, e.from_state, e.to_state) for e in events_of(session, cycle.id) if e.event in machine.EVENTS]
        )
        if replayed != cycle.state:
            problems.append(f"state is {cycle.state} but the audit trail leads to {replayed}")
    except RefusedError as exc:
        problems.append(str(exc))
    return problems


# --- JSON shapes ----------------------------------------------------------------------------------


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _finding_dict(f: CycleFinding) -> dict[str, Any]:
    return {
        "id": f.id,
        "kind": f.kind,
        "detail": f.detail,
        "corrective_action": f.corrective_action,
        "owner": f.owner,
        "due": _iso(f.due),
        "status": f.status,
        "close_note": f.close_note,
        "carried_from": f.carried_from,
    }


def _event_dict(e: CycleEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "event": e.event,
        "from": e.from_state,
        "to": e.to_state,
        "actor": e.actor,
        "comment": e.comment,
        "at": e.at.isoformat(),
    }


def summary_dict(session: Session, cycle: ReviewCycle) -> dict[str, Any]:
    """The short JSON shape of `cycle list`."""
    done = steps_of(session, cycle.id)
    findings = findings_of(session, cycle.id)
    return {
        "id": cycle.id,
        "period": cycle.period,
        "segments": cycle.segments,
        "owner": cycle.owner,
        "approver": cycle.approver,
        "state": cycle.state,
        "as_of": cycle.as_of.isoformat(),
        "accounts": len(cycle.account_ids),
        "steps_done": len(done),
        "next_step": next(iter(machine.open_steps(done)), None),
        "open_findings": sum(1 for f in findings if f.status == "open"),
        "sealed": bool(cycle.digest),
    }


def cycle_dict(session: Session, cycle: ReviewCycle, full: bool = False) -> dict[str, Any]:
    """The JSON shape of `cycle show`; `full` adds the account list, the escalation log and evidence (export)."""
    names = _names(session)
    done = steps_of(session, cycle.id)
    model = session.get(ScoringModelVersion, cycle.model_id) if cycle.model_id else None
    ruleset = session.get(Ruleset, cycle.ruleset_id) if cycle.ruleset_id else None
    carried = {
        f.id: f.cycle_id
        for f in session.scalars(
            select(CycleFinding).where(
                CycleFinding.id.in_([f.carried_from for f in findings_of(session, cycle.id) if f.carried_from])
            )
        )
    }
    first, last = machine.parse_period(cycle.period)
    data: dict[str, Any] = summary_dict(session, cycle) | {
        "period_start": first.isoformat(),
        "period_end": last.isoformat(),
        "created_at": cycle.created_at.isoformat(),
        "model": {"version": model.version, "sha256": model.sha256} if model else None,
        "ruleset": {"name": ruleset.name, "sha256": ruleset.sha256} if ruleset else None,
        "steps": [
            {
                "step": name,
                "done": name in done,
                "done_by": done[name].done_by if name in done else None,
                "done_at": done[name].done_at.isoformat() if name in done else None,
                "note": done[name].note if name in done else None,
                "evidence": done[name].evidence if name in done else [],
                "result": done[name].result if name in done else None,
            }
            for name in machine.STEPS
        ],
        "findings": [
            _finding_dict(f)
            | {
                "carried_from": {"cycle": carried.get(f.carried_from), "finding": f.carried_from}
                if f.carried_from
                else None
            }
            for f in findings_of(session, cycle.id)
        ],
        "decisions": [
            {
                "account": names.get(d.account_id),
                "decision": d.decision,
                "owner": d.owner,
                "reason": d.reason,
                "decided_at": d.decided_at.isoformat(),
            }
            for d in decisions_of(session, cycle.id)
        ],
        "history": [_event_dict(e) for e in events_of(session, cycle.id)],
        "digest": cycle.digest,
    }
    if full:
        data["accounts_list"] = _account_list(session, cycle)
        data["escalations"] = _escalation_log(session, cycle, names)
        data["evidence"] = [{"step": s["step"], "link": link} for s in data["steps"] for link in s["evidence"]]
        data["verification"] = {"problems": verify(session, cycle)}
        data["verification"]["ok"] = not data["verification"]["problems"]
    return data


def _account_list(session: Session, cycle: ReviewCycle) -> list[dict[str, Any]]:
    from sqlalchemy.orm import aliased

    from pulsecheck.workflow.portfolio import Scope, latest_snapshots

    scope = set(cycle.account_ids)
    latest = latest_snapshots(session, cycle.as_of, Scope(account_ids=frozenset(scope)))
    owner = aliased(User)
    rows = session.execute(
        select(Account.id, Account.external_id, Account.name, Account.segment, owner.name)
        .outerjoin(owner, owner.id == Account.owner_id)
        .order_by(Account.external_id)
    )
    return [
        {
            "account": ext,
            "name": name,
            "segment": segment,
            "owner": owner_name,
            "score": latest.get(pk, (None, None))[0],
            "bucket": latest.get(pk, (None, None))[1],
        }
        for pk, ext, name, segment, owner_name in rows
        if pk in scope
    ]


def _escalation_log(session: Session, cycle: ReviewCycle, names: Mapping[int, str]) -> list[dict[str, Any]]:
    """Escalations of accounts in scope that were open during the period or opened since it began."""
    first, _ = machine.parse_period(cycle.period)
    since = start_of_day(first, UTC) - timedelta(days=1)
    scope = set(cycle.account_ids)
    query = select(Escalation).where((Escalation.status != "resolved") | (Escalation.opened_at >= since))
    return [
        {
            "id": e.id,
            "account": names.get(e.account_id),
            "rule": e.rule_id,
            "severity": e.severity,
            "priority": e.priority,
            "owner": e.owner,
            "status": e.status,
            "reason": e.reason,
            "opened_at": e.opened_at.isoformat(),
            "resolved_at": _iso(e.resolved_at),
        }
        for e in session.scalars(query.order_by(Escalation.priority, Escalation.opened_at))
        if e.account_id in scope
    ]
