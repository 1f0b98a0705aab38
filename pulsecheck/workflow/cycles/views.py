"""What `cycle list`, `cycle show` and `cycle export` print: the list of cycles and the cycle's JSON shapes
(documented in README); the full shape adds the account list, the escalation log, evidence and verification. A
sealed cycle shows its steps and account list from the archive stored at the seal, never from live snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError
from pulsecheck.states import cycle as machine
from pulsecheck.storage.models import CycleFinding, CycleStep, Escalation, ReviewCycle, Ruleset, ScoringModelVersion
from pulsecheck.storage.paging import Page, PageRequest, fetch_page
from pulsecheck.timeutil import iso, start_of_day
from pulsecheck.workflow import attachments
from pulsecheck.workflow.cycles.access import account_names, event_dict, events_of, steps_of
from pulsecheck.workflow.cycles.records import decisions_of, finding_dict, finding_version, findings_of
from pulsecheck.workflow.cycles.seal import account_list, verify


def list_cycles(session: Session, state: str | None = None) -> list[ReviewCycle]:
    """Cycles, newest first."""
    if state is not None and state not in machine.STATES:
        raise InputError(f"--state {state!r}: choose from {', '.join(machine.STATES)}")
    query = select(ReviewCycle).order_by(ReviewCycle.id.desc())
    return list(session.scalars(query.where(ReviewCycle.state == state) if state else query))


def cycle_page(
    session: Session, request: PageRequest, state: str | None = None, owner: str | None = None
) -> Page[dict[str, Any]]:
    """One page of cycles (newest first by default) in the short JSON shape of `cycle list`."""
    if state is not None and state not in machine.STATES:
        raise InputError(f"--state {state!r}: choose from {', '.join(machine.STATES)}")
    query = select(ReviewCycle)
    if state:
        query = query.where(ReviewCycle.state == state)
    if owner:
        query = query.where(ReviewCycle.owner == owner)
    sorts = {
        "newest": (ReviewCycle.id.desc(),),
        "oldest": (ReviewCycle.id,),
        "period": (ReviewCycle.period, ReviewCycle.id),
    }
    return fetch_page(session, query, request, sorts).map(lambda cycle: summary_dict(session, cycle))


def summary_dict(
    session: Session,
    cycle: ReviewCycle,
    done: Mapping[str, CycleStep] | None = None,
    findings: list[CycleFinding] | None = None,
) -> dict[str, Any]:
    """The short JSON shape of `cycle list` (`done` and `findings`: the cycle's, when the caller has read them)."""
    done = steps_of(session, cycle.id) if done is None else done
    findings = findings_of(session, cycle.id) if findings is None else findings
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
    decisions = decisions_of(session, cycle.id)
    escalations = _escalations(session, cycle) if full else []
    names = account_names(session, [d.account_id for d in decisions] + [e.account_id for e in escalations])
    model = session.get(ScoringModelVersion, cycle.model_id) if cycle.model_id else None
    ruleset = session.get(Ruleset, cycle.ruleset_id) if cycle.ruleset_id else None
    first, last = machine.parse_period(cycle.period)
    done, findings = steps_of(session, cycle.id), findings_of(session, cycle.id)
    data: dict[str, Any] = summary_dict(session, cycle, done, findings) | {
        "period_start": first.isoformat(),
        "period_end": last.isoformat(),
        "created_at": cycle.created_at.isoformat(),
        "model": {"version": model.version, "sha256": model.sha256} if model else None,
        "ruleset": {"name": ruleset.name, "sha256": ruleset.sha256} if ruleset else None,
        "steps": _archived_steps(cycle.sealed) if cycle.sealed else _step_dicts(session, done),
        "findings": _finding_dicts(session, findings),
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
        "history": [event_dict(e) for e in events_of(session, cycle.id)],
        "digest": cycle.digest,
    }
    if full:
        data["accounts_list"] = cycle.sealed["accounts"] if cycle.sealed else account_list(session, cycle)
        data["escalations"] = _escalation_log(escalations, names)
        data["evidence"] = _evidence(data["steps"])
        data["verification"] = {"problems": verify(session, cycle)}
        data["verification"]["ok"] = not data["verification"]["problems"]
    return data


def _step_dicts(session: Session, done: Mapping[str, CycleStep]) -> list[dict[str, Any]]:
    """Every step of the SOP in order, done or not; `attachments` are the evidence files stored with it."""
    files = attachments.links_of_records(session, attachments.CYCLE_STEP, [step.id for step in done.values()])
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


def _evidence(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every step's evidence: links as given, files by name and the sha256 of the bytes stored (and sealed)."""
    links = [{"step": s["step"], "link": link, "file": None, "sha256": None} for s in steps for link in s["evidence"]]
    files = [
        {"step": s["step"], "link": None, "file": a["filename"], "sha256": a["sha256"]}
        for s in steps
        for a in s["attachments"]
    ]
    order = {name: n for n, name in enumerate(machine.STEPS)}
    return sorted(links + files, key=lambda e: order[e["step"]])


def _finding_dicts(session: Session, findings: list[CycleFinding]) -> list[dict[str, Any]]:
    """The cycle's findings; a carried one names the cycle and finding it came from."""
    origins = [f.carried_from for f in findings if f.carried_from]
    carried = {f.id: f.cycle_id for f in session.scalars(select(CycleFinding).where(CycleFinding.id.in_(origins)))}
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


def _escalations(session: Session, cycle: ReviewCycle) -> list[Escalation]:
    """Escalations of accounts in scope that were open during the period or opened since it began."""
    first, _ = machine.parse_period(cycle.period)
    since = start_of_day(first, UTC) - timedelta(days=1)
    scope = set(cycle.account_ids)
    query = select(Escalation).where((Escalation.status != "resolved") | (Escalation.opened_at >= since))
    found = session.scalars(query.order_by(Escalation.priority, Escalation.opened_at))
    return [e for e in found if e.account_id in scope]


def _escalation_log(escalations: list[Escalation], names: Mapping[int, str]) -> list[dict[str, Any]]:
    """The escalation log of the export, each naming its account."""
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
            "resolved_at": iso(e.resolved_at),
        }
        for e in escalations
    ]
