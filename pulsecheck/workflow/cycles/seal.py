"""The seal of an approved cycle: the archive of what it was approved on (its content, the account list with each
account's score, bucket and at-risk reason, the sha256 of each evidence file), stored in `review_cycles.sealed`;
the digest over that archive; and the verification that the archive, the seal, the live records, the stored
evidence bytes and the audit trail still agree. A later re-score changes nothing the archive shows.

Sealing changes the mapped cycle; reading the archive and verifying it are SQLAlchemy Core statements that take a
connection or a session and a cycle's row or mapped object alike (`cycle verify` and `cycle export` import no ORM,
issue 17)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from pulsecheck.errors import RefusedError
from pulsecheck.jsontext import canonical_json
from pulsecheck.states import cycle as machine
from pulsecheck.storage.tables import ACCOUNTS, USERS
from pulsecheck.workflow import attachments
from pulsecheck.workflow.cycles.reading import decisions_of, event_dict, events_of, finding_dict, findings_of, steps_of

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

    from pulsecheck.storage.models import ReviewCycle


def seal(session: Session, cycle_id: int) -> ReviewCycle:
    """Store the archive of the cycle as the database now holds it, and its digest (on approval)."""
    from pulsecheck.workflow.cycles.access import get_cycle

    session.expire_all()  # seal what the database holds, exactly as `verify` will read it back
    cycle = get_cycle(session, cycle_id)
    cycle.sealed = archive(session, cycle)
    cycle.digest = machine.seal_digest(cycle.sealed)
    session.flush()
    return cycle


def archive(db: Session | Connection, cycle: Any) -> dict[str, Any]:
    """What the cycle is approved on, as the plain JSON stored with it: `content` (what `sealed_content` covers)
    and `accounts` (the account list with scores at the cycle's as-of and the classify step's at-risk reasons)."""
    stored = {"content": sealed_content(db, cycle), "accounts": account_list(db, cycle)}
    plain: dict[str, Any] = _plain(stored)
    return plain


def _plain(value: Any) -> Any:
    """`value` as it reads back from a JSON column (dates as text), so a digest over either is the same."""
    return json.loads(canonical_json(value))


def account_list(db: Session | Connection, cycle: Any) -> list[dict[str, Any]]:
    """Every account in scope: owner, latest score and bucket at the cycle's as-of, and, when the classify step
    found it at risk, its priority and reasons."""
    from pulsecheck.workflow.at_risk import Scope, latest_snapshots

    scope = set(cycle.account_ids)
    latest = latest_snapshots(db, cycle.as_of, Scope(account_ids=frozenset(scope)))
    classify = steps_of(db, cycle.id).get("classify")
    risky = {a["account"]: a for a in classify.result.get("at_risk", [])} if classify else {}
    account, owner = ACCOUNTS.c, USERS.c
    rows = db.execute(
        select(account.id, account.external_id, account.name, account.segment, owner.name)
        .outerjoin(USERS, owner.id == account.owner_id)
        .order_by(account.external_id)
    )
    return [
        {
            "account": ext,
            "name": name,
            "segment": segment,
            "owner": owner_name,
            "score": latest.get(pk, (None, None))[0],
            "bucket": latest.get(pk, (None, None))[1],
            "at_risk": ext in risky,
            "priority": risky[ext].get("priority") if ext in risky else None,
            "reasons": list(risky[ext].get("reasons", [])) if ext in risky else [],
        }
        for pk, ext, name, segment, owner_name in rows
        if pk in scope
    ]


def _step_content(db: Session | Connection, step: Any) -> dict[str, Any]:
    """One step as the seal covers it; evidence files by name and sha256 (a step without files keeps the shape
    that cycles sealed before files were stored have)."""
    data = {
        "step": step.step,
        "done_by": step.done_by,
        "done_at": step.done_at,
        "note": step.note,
        "evidence": step.evidence,
        "result": step.result,
    }
    files = attachments.links_of(db, attachments.CYCLE_STEP, step.id)
    if files:
        data["attachments"] = [attachments.bound(link) for link in files]
    return data


def sealed_content(db: Session | Connection, cycle: Any) -> dict[str, Any]:
    """What the seal covers: the cycle's snapshot, steps, findings, decisions and audit rows up to approval."""
    events = events_of(db, cycle.id)
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
            _step_content(db, s)
            for s in sorted(steps_of(db, cycle.id).values(), key=lambda s: machine.STEPS.index(s.step))
        ],
        "findings": [finding_dict(f) for f in findings_of(db, cycle.id)],
        "decisions": [
            {
                "account_id": d.account_id,
                "decision": d.decision,
                "owner": d.owner,
                "reason": d.reason,
                "decided_at": d.decided_at,
            }
            for d in decisions_of(db, cycle.id)
        ],
        "events": [event_dict(e) for e in events if upto is not None and e.id <= upto],
    }


def verify(db: Session | Connection, cycle: Any) -> list[str]:
    """Problems: content changed since the seal, a missing seal, an audit trail that does not explain the state, a
    cycle or event that disagrees with the audit chain, or a signed approval whose SSH signature does not verify."""
    problems: list[str] = []
    if cycle.state in ("approved", "closed") and not cycle.digest:
        problems.append(f"cycle {cycle.id} is {cycle.state} but has no seal")
    if cycle.digest:
        problems += seal_problems(db, cycle, cycle.digest)
    events = events_of(db, cycle.id)
    try:
        replayed = machine.replay([(e.event, e.from_state, e.to_state) for e in events if e.event in machine.EVENTS])
        if replayed != cycle.state:
            problems.append(f"state is {cycle.state} but the audit trail leads to {replayed}")
    except RefusedError as exc:
        problems.append(str(exc))
    from pulsecheck.workflow.chaincheck import problems_of, signature_problems  # the sealing half needs neither

    keys = [("cycle", cycle.id), *(("cycle_event", event.id) for event in events)]
    return problems + problems_of(db, [keys])[0] + signature_problems(db, keys)


def seal_problems(db: Session | Connection, cycle: Any, digest: str) -> list[str]:
    """The archive no longer has the sealed digest; live records differ from the archive; stored evidence bytes
    changed. A cycle sealed before archives were stored is checked by its digest over the live records."""
    live = _plain(sealed_content(db, cycle))
    found: list[str] = []
    if cycle.sealed is None:
        now_digest = machine.seal_digest(live)
        if now_digest != digest:
            found.append(f"content changed after approval: sealed sha256 {digest[:16]}…, now {now_digest[:16]}…")
    else:
        archived = machine.seal_digest(cycle.sealed)
        if archived != digest:
            found.append(f"sealed archive changed after approval: sealed sha256 {digest[:16]}…, now {archived[:16]}…")
        content = cycle.sealed.get("content") if isinstance(cycle.sealed, dict) else None
        changed = [key for key in live if not isinstance(content, dict) or content.get(key) != live[key]]
        if changed:
            found.append(f"content changed after approval: {', '.join(changed)} differ from the sealed archive")
    for step in sorted(steps_of(db, cycle.id).values(), key=lambda s: machine.STEPS.index(s.step)):
        files = attachments.links_of(db, attachments.CYCLE_STEP, step.id)
        found += attachments.problems(db, files, f"step {step.step}")
    return found
