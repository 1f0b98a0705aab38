"""A cycle's findings and decisions: findings the system notes or a person adds and closes, findings carried from
the previous cycle of the same scope, and the decision (escalate or monitor) on each account in scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pulsecheck.errors import ConflictError, InputError, NotFoundError, RefusedError
from pulsecheck.states import cycle as machine
from pulsecheck.storage.models import Account, CycleDecision, CycleFinding, CycleStep, ReviewCycle, User
from pulsecheck.timeutil import iso
from pulsecheck.workflow import attachments
from pulsecheck.workflow.cycles.access import get_cycle, guard_work, log
from pulsecheck.workflow.cycles.reading import finding_version, findings_of, steps_of
from pulsecheck.workflow.users import get_user

if TYPE_CHECKING:
    from sqlalchemy import Row

# --- findings -------------------------------------------------------------------------------------


def note_finding(
    session: Session, cycle: ReviewCycle, kind: str, detail: str, carried_from: Row[Any] | None = None
) -> CycleFinding | None:
    """Record a finding the system found, unless the same one is already open in this cycle; `carried_from`, the
    previous cycle's finding it carries (a row of `reading.findings_of`), gives its corrective action."""
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


def carry_findings(session: Session, cycle: ReviewCycle, actor: str, now: datetime) -> None:
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
        note_finding(session, cycle, f.kind, f.detail, carried_from=f)
        for f in findings_of(session, previous.id)
        if f.status == "open" and (f.corrective_action or "").strip()
    ]
    if any(carried):
        session.flush()
        ids = ", ".join(f"#{f.carried_from}" for f in carried if f)
        text = f"{len(carried)} open finding(s) carried from cycle {previous.id}: {ids}"
        log(session, cycle, "carry", actor, now, text)


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
    guard_work(session, cycle, actor, "add a finding")
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
    log(session, cycle, "finding", actor.name, now, f"#{finding.id} added ({kind}): {finding.detail}")
    return finding


def close_finding(session: Session, finding_id: int, note: str, actor: User, now: datetime) -> CycleFinding:
    """Close an open finding with a note (in a draft cycle)."""
    finding = session.get(CycleFinding, finding_id)
    if finding is None:
        raise NotFoundError(f"unknown finding {finding_id}")
    if not note.strip():
        raise InputError("--note is empty")
    cycle = get_cycle(session, finding.cycle_id)
    guard_work(session, cycle, actor, f"close finding {finding_id}")
    if finding.status != "open":
        raise RefusedError(f"finding {finding_id} is already {finding.status}")
    finding.status, finding.close_note = "closed", note.strip()
    log(session, cycle, "finding", actor.name, now, f"#{finding.id} closed: {finding.close_note}")
    return finding


@dataclass(frozen=True)
class FindingEdit:
    """What an edit changes of a finding: None keeps a field as it is; an empty text clears the corrective action
    or its owner, `clear_due` its due date."""

    kind: str | None = None
    detail: str | None = None
    action: str | None = None
    owner: str | None = None
    due: date | None = None
    clear_due: bool = False


def _said(value: Any) -> str:
    """A field's value in an audit row: quoted text, a date as YYYY-MM-DD, or (none)."""
    return "(none)" if value is None else f'"{iso(value) if isinstance(value, date) else value}"'


def edit_finding(
    session: Session, finding_id: int, change: FindingEdit, actor: User, now: datetime, expected: str | None = None
) -> tuple[CycleFinding, list[str]]:
    """Change a finding's kind, text, corrective action, owner or due date (in a draft, by those who may add one);
    `expected` is the version the editor read: a finding changed since is a conflict and nothing is saved.
    Returns the finding and the names of the fields that changed (none: no audit row)."""
    finding = session.get(CycleFinding, finding_id)
    if finding is None:
        raise NotFoundError(f"unknown finding {finding_id}")
    given = (change.kind, change.detail, change.action, change.owner, change.due)
    if all(v is None for v in given) and not change.clear_due:
        raise InputError("nothing to change: give --kind, --detail, --action, --owner or --due")
    if change.kind is not None and change.kind not in machine.FINDING_KINDS:
        raise InputError(f"--kind {change.kind!r}: choose from {', '.join(machine.FINDING_KINDS)}")
    if change.detail is not None and not change.detail.strip():
        raise InputError("--detail is empty")
    owner = finding.owner if change.owner is None else (change.owner.strip() or None)
    if owner is not None and owner != finding.owner:
        get_user(session, owner, what="--owner")
    action = finding.corrective_action if change.action is None else (change.action.strip() or None)
    due = None if change.clear_due else (change.due if change.due is not None else finding.due)
    if (owner or due) and not action:
        raise InputError("--owner and --due belong to a corrective action: keep or give --action TEXT too")
    cycle = get_cycle(session, finding.cycle_id)
    guard_work(session, cycle, actor, f"edit finding {finding_id}")
    current = finding_version(finding)
    if expected is not None and expected.strip() != current:
        raise ConflictError(
            f"finding {finding_id} changed since you read it (version {expected.strip()}, now {current}): "
            "nothing was saved; read it again"
        )
    after: dict[str, Any] = {
        "kind": finding.kind if change.kind is None else change.kind,
        "detail": finding.detail if change.detail is None else change.detail.strip(),
        "corrective_action": action,
        "owner": owner,
        "due": due,
    }
    changed = [name for name, value in after.items() if getattr(finding, name) != value]
    if not changed:
        return finding, []
    said = "; ".join(
        f"{name.replace('_', ' ')} {_said(getattr(finding, name))} -> {_said(after[name])}"
        for name in changed
    )
    for name in changed:
        setattr(finding, name, after[name])
    log(session, cycle, "finding", actor.name, now, f"#{finding.id} edited: {said}")
    return finding, changed


# --- decisions ------------------------------------------------------------------------------------


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
    guard_work(session, cycle, actor, f"decide on {account.external_id}")
    _clear_escalate_step(session, cycle, account, actor, now)
    if decision == "escalate":
        _escalate(session, cycle, account, owner, text, now)
    row = session.scalar(
        select(CycleDecision).where(CycleDecision.cycle_id == cycle.id, CycleDecision.account_id == account.id)
    )
    if row is None:
        row = CycleDecision(cycle_id=cycle.id, account_id=account.id, decision=decision, owner=owner, decided_at=now)
        session.add(row)
    row.decision, row.owner, row.reason, row.decided_at = decision, owner, text, now
    log(session, cycle, "decide", actor.name, now, f"{account.external_id}: {decision} by {owner}")
    return row


def _clear_escalate_step(session: Session, cycle: ReviewCycle, account: Account, actor: User, now: datetime) -> None:
    """The escalate step recorded the decisions as they were: a new one clears it (and what follows) to run again."""
    done = steps_of(session, cycle.id)
    stale = [s for s in ("escalate", *machine.cleared_by_redo("escalate", done)) if s in done]
    if stale:
        attachments.unlink(session, attachments.CYCLE_STEP, [done[s].id for s in stale])
        session.execute(delete(CycleStep).where(CycleStep.cycle_id == cycle.id, CycleStep.step.in_(stale)))
        log(session, cycle, "redo", actor.name, now, f"decision on {account.external_id}; cleared: {', '.join(stale)}")


def _escalate(
    session: Session, cycle: ReviewCycle, account: Account, owner: str, text: str | None, now: datetime
) -> None:
    """Open the cycle's escalation of the account (unless one is open), at the classify step's risk and priority."""
    from pulsecheck.workflow import escalations as escalation

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


def _classified(session: Session, cycle: ReviewCycle) -> dict[str, dict[str, Any]]:
    step = steps_of(session, cycle.id).get("classify")
    return {a["account"]: a for a in step.result.get("at_risk", [])} if step else {}
