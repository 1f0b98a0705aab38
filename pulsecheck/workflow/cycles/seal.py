"""The seal of an approved cycle: the digest over what the database holds, and the verification that the content,
the seal and the audit trail still agree."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from pulsecheck.errors import RefusedError
from pulsecheck.states import cycle as machine
from pulsecheck.storage.models import ReviewCycle
from pulsecheck.workflow.cycles.access import event_dict, events_of, get_cycle, steps_of
from pulsecheck.workflow.cycles.records import decisions_of, finding_dict, findings_of


def seal(session: Session, cycle_id: int) -> ReviewCycle:
    """Store the digest of the cycle as the database now holds it (on approval)."""
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
        "findings": [finding_dict(f) for f in findings_of(session, cycle.id)],
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
        "events": [event_dict(e) for e in events if upto is not None and e.id <= upto],
    }


def verify(session: Session, cycle: ReviewCycle) -> list[str]:
    """Problems: content changed since the seal, a missing seal, an audit trail that does not explain the state, a
    cycle or event that disagrees with the audit chain, or a signed approval whose SSH signature does not verify."""
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
    from pulsecheck.workflow.audit import chain_problems  # here: the sealing half of this module needs none of it

    return problems + chain_problems(session, [cycle, *events_of(session, cycle.id)])
