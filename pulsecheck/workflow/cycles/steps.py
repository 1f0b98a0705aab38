"""The step runners of a review cycle (the SOP's seven steps): each runs the existing service and returns the
step's JSON result; `run_step` completes one step."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select
from sqlalchemy.orm import Session

from pulsecheck.errors import RefusedError
from pulsecheck.states import cycle as machine
from pulsecheck.storage.models import (
    Account,
    CycleStep,
    Escalation,
    ReviewCycle,
    ScoreSnapshot,
    ScoringModelVersion,
    User,
)
from pulsecheck.timeutil import iso
from pulsecheck.workflow import attachments
from pulsecheck.workflow.cycles.access import get_cycle, guard_work, log, period_bounds
from pulsecheck.workflow.cycles.reading import account_names, decisions_of, finding_dict, findings_of, steps_of
from pulsecheck.workflow.cycles.records import note_finding
from pulsecheck.workflow.cycles.service import CycleSettings
from pulsecheck.workflow.cycles.trends import trends_result

LISTED = 200  # accounts listed in a step result before it keeps only the count


@dataclass
class StepRun:
    """What a step runner works with."""

    session: Session
    cycle: ReviewCycle
    now: datetime
    settings: CycleSettings
    done: dict[str, Row[Any]]  # the steps done before this one (`reading.steps_of`)

    @property
    def scope(self) -> set[int]:
        """The ids of the accounts in the cycle's scope."""
        return set(self.cycle.account_ids)

    @property
    def since(self) -> datetime:
        """The first moment of the cycle's period."""
        return period_bounds(self.cycle, self.settings.tz)[0]


def _some(items: Sequence[Any]) -> dict[str, Any]:
    return {"count": len(items), "accounts": list(items[:LISTED])}


def _step_scope(run: StepRun) -> dict[str, Any]:
    """Confirm the account list: per segment, without owner, without a snapshot, changed since the start."""
    cycle, scope = run.cycle, run.scope
    rows = run.session.execute(select(Account.id, Account.external_id, Account.segment, Account.owner_id)).all()
    current = {pk for pk, _, segment, _ in rows if not cycle.segments or segment in cycle.segments}
    added, left = current - scope, scope - current
    scored = set(
        run.session.scalars(
            select(ScoreSnapshot.account_id)
            .where(ScoreSnapshot.as_of >= run.since, ScoreSnapshot.as_of <= cycle.as_of)
            .distinct()
        )
    )
    return {
        "period": cycle.period,
        "as_of": cycle.as_of.isoformat(),
        "segments": cycle.segments or "all",
        "accounts": len(scope),
        "by_segment": dict(sorted(Counter(seg or "(none)" for pk, _, seg, _ in rows if pk in scope).items())),
        "without_owner": _some(sorted(ext for pk, ext, _, owner in rows if pk in scope and owner is None)),
        "without_snapshot": _some(sorted(ext for pk, ext, _, _ in rows if pk in scope and pk not in scored)),
        "added_since_start": _some(sorted(ext for pk, ext, _, _ in rows if pk in added)),
        "left_scope_since_start": _some(sorted(ext for pk, ext, _, _ in rows if pk in left)),
    }


def _step_data(run: StepRun) -> dict[str, Any]:
    """Open and accepted deviations of the accounts in scope (and portfolio-wide ones), by kind."""
    from pulsecheck.storage.models import Deviation

    names, scope = account_names(run.session), run.scope
    counts: dict[str, Counter[str]] = {"open": Counter(), "accepted": Counter()}
    items = []
    for dev in run.session.scalars(select(Deviation).where(Deviation.status != "resolved").order_by(Deviation.id)):
        if dev.account_id is not None and dev.account_id not in scope:
            continue
        counts.setdefault(dev.status, Counter())[dev.kind] += 1
        items.append(
            {
                "id": dev.id,
                "account": names.get(dev.account_id) if dev.account_id else None,
                "kind": dev.kind,
                "subject": dev.subject,
                "status": dev.status,
                "detail": dev.detail,
                "accepted_until": iso(dev.accepted_until),
            }
        )
    return {
        "open": dict(sorted(counts["open"].items())),
        "accepted": dict(sorted(counts["accepted"].items())),
        "total_open": sum(counts["open"].values()),
        "total_accepted": sum(counts["accepted"].values()),
        "deviations": items[:LISTED],
    }


def _model_ref(row: Row[Any] | ScoringModelVersion | None) -> dict[str, Any] | None:
    return {"version": row.version, "sha256": row.sha256} if row else None


def _step_model(run: StepRun) -> dict[str, Any]:
    """`model check` of the live file, the approved version against the one at start, and which model scored
    the period's snapshots; every mismatch is a scoring finding."""
    from pulsecheck.workflow.models import approved_row

    session, cycle, live_path = run.session, run.cycle, run.settings.live_model
    approved = approved_row(session)
    at_start = session.get(ScoringModelVersion, cycle.model_id) if cycle.model_id else None
    problems, differences = _model_problems(run, approved, at_start)
    by_model = _snapshots_by_model(run)
    other = {v: n for v, n in by_model.items() if at_start is None or v != at_start.version}
    if other:
        problems.append(
            f"{sum(other.values())} snapshot(s) in {cycle.period} were scored with another model version than "
            f"{at_start.version if at_start else 'the approved one'}: "
            + ", ".join(f"{v} ({n})" for v, n in sorted(other.items()))
        )
    for problem in problems:
        note_finding(session, cycle, "scoring", problem)
    return {
        "approved": _model_ref(approved),
        "at_start": _model_ref(at_start),
        "live_file": live_path,
        "checked": bool(approved is not None and live_path),
        "matches": not differences if approved is not None and live_path else None,
        "differences": differences,
        "snapshots_by_model": dict(sorted(by_model.items())),
        "mismatch": bool(problems),
        "problems": problems,
    }


def _model_problems(
    run: StepRun, approved: Row[Any] | None, at_start: ScoringModelVersion | None
) -> tuple[list[str], list[str]]:
    """(problems, differences): no approved model or a changed one, and how the live file differs from it."""
    from pulsecheck.workflow.models import check_model, read_model_file

    live_path = run.settings.live_model
    problems: list[str] = []
    differences: list[str] = []
    if approved is None:
        problems.append("no approved scoring model: the live model cannot be checked")
    elif at_start is None or at_start.id != approved.id:
        problems.append(
            f"the approved model changed during the cycle: {at_start.version if at_start else 'none'} at start, "
            f"{approved.version} now"
        )
    if approved is not None and live_path:
        _, live = read_model_file(live_path)
        differences = check_model(run.session, live, run.now)
        if differences:
            problems.append(
                f"live model {live_path} differs from the approved model {approved.version}: " + "; ".join(differences)
            )
    elif approved is not None:
        problems.append("live model not checked: set [scoring] model in pulsecheck.toml to the file in use")
    return problems, differences


def _snapshots_by_model(run: StepRun) -> Counter[str]:
    """Model version → snapshots of accounts in scope scored with it during the period."""
    rows = run.session.execute(select(ScoringModelVersion.id, ScoringModelVersion.version)).all()
    versions = {pk: version for pk, version in rows}
    by_model: Counter[str] = Counter()
    scope = run.scope
    window = (ScoreSnapshot.as_of >= run.since) & (ScoreSnapshot.as_of <= run.cycle.as_of)
    query = select(ScoreSnapshot.account_id, ScoreSnapshot.model_id).where(window)
    for acc, model_id in run.session.execute(query):
        if acc in scope:
            by_model[versions.get(model_id, str(model_id))] += 1
    return by_model


def _step_trends(run: StepRun) -> dict[str, Any]:
    """Declining accounts, sudden changes, repeated low scores and the SOP's cross-checks (see `trends`)."""
    return trends_result(run.session, run.cycle, run.since, run.settings)


def _step_classify(run: StepRun) -> dict[str, Any]:
    """Risk level and escalation priority of every at-risk account in scope (the priority matrix), and the
    accounts the trends step flagged that are not at risk (to watch)."""
    from pulsecheck.workflow.at_risk import at_risk

    found = at_risk(run.session, run.cycle.as_of, run.settings.priority, sorted(run.scope))
    trends = run.done["trends"].result
    flags: dict[str, list[str]] = {}
    for key in ("declining", "sudden_changes", "low_streaks", "possible_false_negatives", "possible_false_positives"):
        for item in trends.get(key, []):
            names = flags.setdefault(item["account"], [])
            if key not in names:
                names.append(key)
    rows = [
        a.as_dict() | {"risk_level": machine.risk_level(a.priority), "flags": flags.get(a.external_id, [])}
        for a in found
    ]
    risky = {a.external_id for a in found}
    return {
        "at_risk": rows,
        "watch": [{"account": acc, "flags": flags[acc]} for acc in sorted(flags) if acc not in risky],
        "by_priority": dict(sorted(Counter(r["priority"] for r in rows).items())),
        "by_risk_level": dict(sorted(Counter(r["risk_level"] for r in rows).items())),
    }


def _step_escalate(run: StepRun) -> dict[str, Any]:
    """Refused until every at-risk account has a decision with a named owner (cycle decision or open escalation)."""
    session = run.session
    at_risk = [a["account"] for a in run.done["classify"].result["at_risk"]]
    names = account_names(session)
    ids = {ext: pk for pk, ext in names.items()}
    decisions = {d.account_id: d for d in decisions_of(session, run.cycle.id)}
    escalations = _owned_escalations(session)
    decided: dict[str, dict[str, Any]] = {}
    for ext in at_risk:
        pk = ids.get(ext)
        if pk in decisions:
            decided[ext] = _decision_entry(ext, decisions[pk])
        elif pk in escalations:
            e = escalations[pk]
            decided[ext] = {
                "account": ext,
                "decision": "escalate",
                "owner": e.owner,
                "reason": e.reason,
                "source": f"escalation {e.id} ({e.priority}, {e.status})",
            }
    refusal = machine.undecided_refusal(at_risk, decided)
    if refusal:
        raise RefusedError(refusal)
    others = [_decision_entry(names[pk], d) for pk, d in decisions.items() if names[pk] not in decided]
    entries = [decided[ext] for ext in at_risk] + others
    return {
        "at_risk": len(at_risk),
        "decisions": entries,
        "by_decision": dict(sorted(Counter(e["decision"] for e in entries).items())),
    }


def _owned_escalations(session: Session) -> dict[int, Escalation]:
    """Account id → its most urgent (then oldest) unresolved escalation that has an owner."""
    escalations: dict[int, Escalation] = {}
    for esc in session.scalars(
        select(Escalation)
        .where(Escalation.status != "resolved", Escalation.owner.is_not(None))
        .order_by(Escalation.priority, Escalation.opened_at)
    ):
        escalations.setdefault(esc.account_id, esc)
    return escalations


def _decision_entry(account: str, d: Row[Any]) -> dict[str, Any]:
    return {
        "account": account,
        "decision": d.decision,
        "owner": d.owner,
        "reason": d.reason,
        "source": "cycle decision",
    }


def _step_document(run: StepRun) -> dict[str, Any]:
    """The summary: scope, key findings, data issues, scoring issues and non-conformances."""
    done, cycle = run.done, run.cycle
    data, model, trends = done["data"].result, done["model"].result, done["trends"].result
    classify, escalate = done["classify"].result, done["escalate"].result
    findings = findings_of(run.session, cycle.id)
    priorities = ", ".join(f"{p} {n}" for p, n in classify["by_priority"].items())
    key = [
        f"{len(classify['at_risk'])} at-risk account(s)" + (f" ({priorities})" if priorities else ""),
        f"{len(trends['declining'])} declining, {len(trends['sudden_changes'])} sudden change(s), "
        f"{len(trends['low_streaks'])} with repeated low scores",
        f"{len(trends['possible_false_negatives'])} possible false negative(s), "
        f"{len(trends['possible_false_positives'])} possible false positive(s)",
        "decisions: " + (", ".join(f"{k} {n}" for k, n in escalate["by_decision"].items()) or "none"),
        f"{data['total_open']} open and {data['total_accepted']} accepted deviation(s)",
        "model: " + ("matches the approved version" if not model["mismatch"] else "; ".join(model["problems"])),
    ]
    return {
        "scope": {
            "period": cycle.period,
            "segments": cycle.segments or "all",
            "accounts": len(cycle.account_ids),
            "as_of": cycle.as_of.isoformat(),
        },
        "key_findings": key,
        "data_issues": {"open": data["open"], "accepted": data["accepted"]},
        "scoring_issues": model["problems"],
        "non_conformances": [finding_dict(f) for f in findings if f.status == "open"],
        "findings": {
            "open": sum(1 for f in findings if f.status == "open"),
            "closed": sum(1 for f in findings if f.status != "open"),
            "with_corrective_action": sum(1 for f in findings if f.corrective_action),
            "carried": sum(1 for f in findings if f.carried_from),
        },
    }


RUNNERS = {
    "scope": _step_scope,
    "data": _step_data,
    "model": _step_model,
    "trends": _step_trends,
    "classify": _step_classify,
    "escalate": _step_escalate,
    "document": _step_document,
}


def run_step(
    session: Session,
    cycle_id: int,
    step: str,
    actor: User,
    now: datetime,
    settings: CycleSettings,
    note: str | None = None,
    evidence: Sequence[str | attachments.Upload] = (),
    max_size: int = attachments.DEFAULT_MAX_SIZE,
) -> CycleStep:
    """Complete one step: refused before its predecessor; a done step runs again and clears the later ones.
    Evidence is an http(s) link, kept as given, or a file (a path, or an upload already read), stored in the
    database (the seal covers its sha256)."""
    machine.check_step_name(step)
    cycle = get_cycle(session, cycle_id)
    guard_work(session, cycle, actor, f"complete step {step}")
    done = steps_of(session, cycle.id)
    refusal = machine.step_refusal(step, done)
    if refusal:
        raise RefusedError(refusal)
    items = [item if isinstance(item, attachments.Upload) else attachments.link_or_file(item, max_size)
             for item in evidence]
    if step in done:
        redone = [step, *machine.cleared_by_redo(step, done)]
        attachments.unlink(session, attachments.CYCLE_STEP, [done[s].id for s in redone if s in done])
        session.execute(delete(CycleStep).where(CycleStep.cycle_id == cycle.id, CycleStep.step.in_(redone)))
        log(session, cycle, "redo", actor.name, now, f"{step} runs again; cleared: {', '.join(redone)}")
    result = RUNNERS[step](StepRun(session, cycle, now, settings, steps_of(session, cycle.id)))
    row = CycleStep(
        cycle_id=cycle.id,
        step=step,
        done_by=actor.name,
        done_at=now,
        note=(note or "").strip() or None,
        evidence=[item for item in items if isinstance(item, str)],
        result=result,
    )
    session.add(row)
    session.flush()
    for item in items:
        if isinstance(item, attachments.Upload):
            attachments.attach(session, attachments.CYCLE_STEP, row.id, item, actor.name, now)
    log(session, cycle, "step", actor.name, now, f"{step}" + (f": {row.note}" if row.note else ""))
    return row
