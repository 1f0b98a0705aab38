"""Cycles as they are read, on SQLAlchemy Core: a cycle's steps, findings, decisions and audit rows, the account
names its results use, the list of `cycle list` and the JSON shape of `cycle show`. `cycle list` and `cycle show`
import no ORM (issue 17). Every function takes a connection or a session (`Session.execute` runs a Core statement
as a connection does, after flushing what the session holds), so the services that change a cycle read through
them too; they return rows, whose attributes are the columns' names, as a mapped object's are, and a cycle given to
them may be either."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from pulsecheck.errors import InputError, NotFoundError
from pulsecheck.jsontext import canonical_digest
from pulsecheck.states import cycle as machine
from pulsecheck.storage.more_tables import CYCLE_DECISIONS, CYCLE_EVENTS, CYCLE_FINDINGS, CYCLE_STEPS, REVIEW_CYCLES
from pulsecheck.storage.paging import Page, PageRequest, fetch_page
from pulsecheck.storage.tables import ACCOUNTS, RULESETS, SCORING_MODELS
from pulsecheck.timeutil import iso

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row
    from sqlalchemy.orm import Session

_CYCLE = REVIEW_CYCLES.c
_STEP = CYCLE_STEPS.c
_FINDING = CYCLE_FINDINGS.c
_MODEL = SCORING_MODELS.c
_RULESET = RULESETS.c
SORTS = {"newest": (_CYCLE.id.desc(),), "oldest": (_CYCLE.id,), "period": (_CYCLE.period, _CYCLE.id)}
# What `summary_dict` reads of a cycle: not the archive stored at the seal, which a list does not show.
_LISTED = select(
    _CYCLE.id,
    _CYCLE.period,
    _CYCLE.segments,
    _CYCLE.owner,
    _CYCLE.approver,
    _CYCLE.state,
    _CYCLE.as_of,
    _CYCLE.account_ids,
    _CYCLE.digest,
)
CHUNK = 500  # ids per IN (...) list: well under any database's limit on bound parameters


def read_cycle(db: Session | Connection, cycle_id: int) -> Row[Any]:
    """A cycle's row by id (every column), or an error naming it (`access.get_cycle` gives the mapped object that
    a change needs)."""
    found = db.execute(select(REVIEW_CYCLES).where(_CYCLE.id == cycle_id)).first()
    if found is None:
        raise NotFoundError(f"unknown cycle {cycle_id}")
    return found


def steps_of(db: Session | Connection, cycle_id: int) -> dict[str, Row[Any]]:
    """The done steps of a cycle by name."""
    return {s.step: s for s in db.execute(select(CYCLE_STEPS).where(_STEP.cycle_id == cycle_id))}


def findings_of(db: Session | Connection, cycle_id: int) -> list[Row[Any]]:
    """The cycle's findings, oldest first."""
    return list(db.execute(select(CYCLE_FINDINGS).where(_FINDING.cycle_id == cycle_id).order_by(_FINDING.id)))


def decisions_of(db: Session | Connection, cycle_id: int) -> list[Row[Any]]:
    """The cycle's decisions, oldest first."""
    decision = CYCLE_DECISIONS.c
    return list(db.execute(select(CYCLE_DECISIONS).where(decision.cycle_id == cycle_id).order_by(decision.id)))


def events_of(db: Session | Connection, cycle_id: int) -> list[Row[Any]]:
    """The cycle's audit rows, oldest first."""
    event = CYCLE_EVENTS.c
    return list(db.execute(select(CYCLE_EVENTS).where(event.cycle_id == cycle_id).order_by(event.id)))


def account_names(db: Session | Connection, ids: Iterable[int] | None = None) -> dict[int, str]:
    """Account id → external id (results name accounts the way users do): of the accounts `ids` only, or of every
    account when `ids` is None (a page that names a few accounts never reads the whole portfolio)."""
    query = select(ACCOUNTS.c.id, ACCOUNTS.c.external_id)
    if ids is None:
        return {pk: ext for pk, ext in db.execute(query)}
    wanted = sorted(set(ids))
    names: dict[int, str] = {}
    for start in range(0, len(wanted), CHUNK):
        rows = db.execute(query.where(ACCOUNTS.c.id.in_(wanted[start : start + CHUNK])))
        names.update((pk, ext) for pk, ext in rows)
    return names


def event_dict(e: Any) -> dict[str, Any]:
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


def finding_dict(f: Any) -> dict[str, Any]:
    """The JSON shape of one finding (in `cycle show`, the document step and the seal)."""
    return {
        "id": f.id,
        "kind": f.kind,
        "detail": f.detail,
        "corrective_action": f.corrective_action,
        "owner": f.owner,
        "due": iso(f.due),
        "status": f.status,
        "close_note": f.close_note,
        "carried_from": f.carried_from,
    }


_VERSIONED = ("kind", "detail", "corrective_action", "owner", "due", "status", "close_note")


def finding_version(f: Any) -> str:
    """A finding's version as a reader saw it: a short digest of its editable fields and status (findings have no
    version column; an edit that answers an older version is refused as a conflict)."""
    shown = finding_dict(f)
    return canonical_digest({name: shown[name] for name in _VERSIONED})[:16]


def _check_state(state: str | None) -> None:
    if state is not None and state not in machine.STATES:
        raise InputError(f"--state {state!r}: choose from {', '.join(machine.STATES)}")


def list_cycles(db: Session | Connection, state: str | None = None) -> list[Row[Any]]:
    """Cycles, newest first (every column)."""
    _check_state(state)
    query = select(REVIEW_CYCLES).order_by(_CYCLE.id.desc())
    return list(db.execute(query.where(_CYCLE.state == state) if state else query))


def cycle_page(
    db: Session | Connection, request: PageRequest, state: str | None = None, owner: str | None = None
) -> Page[dict[str, Any]]:
    """One page of cycles (newest first by default) in the short JSON shape of `cycle list`: the page's steps and
    findings read in one query each, not two per cycle."""
    _check_state(state)
    query = _LISTED
    if state:
        query = query.where(_CYCLE.state == state)
    if owner:
        query = query.where(_CYCLE.owner == owner)
    page = fetch_page(db, query, request, SORTS, scalars=False)
    done: dict[int, set[str]] = defaultdict(set)
    findings: dict[int, list[Any]] = defaultdict(list)
    ids = [cycle.id for cycle in page.items]
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        for step in db.execute(select(_STEP.cycle_id, _STEP.step).where(_STEP.cycle_id.in_(part))):
            done[step.cycle_id].add(step.step)
        for finding in db.execute(select(_FINDING.cycle_id, _FINDING.status).where(_FINDING.cycle_id.in_(part))):
            findings[finding.cycle_id].append(finding)
    return page.map(lambda cycle: summary_dict(db, cycle, done[cycle.id], findings[cycle.id]))


def summary_dict(
    db: Session | Connection,
    cycle: Any,
    done: Collection[str] | None = None,
    findings: Iterable[Any] | None = None,
) -> dict[str, Any]:
    """The short JSON shape of `cycle list` (`done`, the names of the steps done, and `findings`: the cycle's, when
    the caller has read them)."""
    done = steps_of(db, cycle.id) if done is None else done
    findings = findings_of(db, cycle.id) if findings is None else findings
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


def show_dict(db: Session | Connection, cycle: Any) -> dict[str, Any]:
    """The JSON shape of `cycle show` (`views.cycle_dict` adds what an export has)."""
    decisions = decisions_of(db, cycle.id)
    names = account_names(db, [d.account_id for d in decisions])
    model = ruleset = None
    if cycle.model_id:
        model = db.execute(select(_MODEL.version, _MODEL.sha256).where(_MODEL.id == cycle.model_id)).first()
    if cycle.ruleset_id:
        ruleset = db.execute(select(_RULESET.name, _RULESET.sha256).where(_RULESET.id == cycle.ruleset_id)).first()
    first, last = machine.parse_period(cycle.period)
    done, findings = steps_of(db, cycle.id), findings_of(db, cycle.id)
    return summary_dict(db, cycle, done, findings) | {
        "period_start": first.isoformat(),
        "period_end": last.isoformat(),
        "created_at": cycle.created_at.isoformat(),
        "model": {"version": model.version, "sha256": model.sha256} if model else None,
        "ruleset": {"name": ruleset.name, "sha256": ruleset.sha256} if ruleset else None,
        "steps": _archived_steps(cycle.sealed) if cycle.sealed else _step_dicts(db, done),
        "findings": _finding_dicts(db, findings),
        "decisions": [
            {
                "account": names.get(d.account_id),
                "decision": d.decision,
                "owner": d.owner,
                "reason": d.reason,
                "decided_at": d.decided_at.isoformat(),
            }
            for d in decisions
        ],
        "history": [event_dict(e) for e in events_of(db, cycle.id)],
        "digest": cycle.digest,
    }


def _step_dicts(db: Session | Connection, done: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every step of the SOP in order, done or not; `attachments` are the evidence files stored with it."""
    from pulsecheck.workflow import attachments  # for a cycle not sealed yet: a sealed one shows its archive

    files = attachments.links_of_records(db, attachments.CYCLE_STEP, [step.id for step in done.values()])
    return [
        {
            "step": name,
            "done": name in done,
            "done_by": done[name].done_by if name in done else None,
            "done_at": done[name].done_at.isoformat() if name in done else None,
            "note": done[name].note if name in done else None,
            "evidence": done[name].evidence if name in done else [],
            "attachments": [attachments.bound(k) for k in files if name in done and k.record_id == done[name].id],
            "result": done[name].result if name in done else None,
        }
        for name in machine.STEPS
    ]


def _archived_steps(sealed: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every step of the SOP in order, as the archive stored at the seal has it."""
    done = {s["step"]: s for s in sealed.get("content", {}).get("steps", [])}
    empty: dict[str, Any] = {"done_by": None, "done_at": None, "note": None, "evidence": [], "attachments": []}
    empty["result"] = None
    return [
        {"step": name, "done": name in done}
        | {key: done[name].get(key, default) if name in done else default for key, default in empty.items()}
        for name in machine.STEPS
    ]


def _finding_dicts(db: Session | Connection, findings: list[Any]) -> list[dict[str, Any]]:
    """The cycle's findings; a carried one names the cycle and finding it came from."""
    origins = [f.carried_from for f in findings if f.carried_from]
    carried: dict[int, int] = {}
    if origins:
        query = select(_FINDING.id, _FINDING.cycle_id).where(_FINDING.id.in_(origins))
        carried = {pk: cycle_id for pk, cycle_id in db.execute(query)}
    return [
        finding_dict(f)
        | {"version": finding_version(f)}
        | {
            "carried_from": {"cycle": carried.get(f.carried_from), "finding": f.carried_from}
            if f.carried_from
            else None
        }
        for f in findings
    ]
