"""The blast radius of activating a rules file: what the next evaluation would do with it that it would not do
with the active rules (and the reverse), on today's facts, and the open escalations of rules it removes.

Both plans come from the planner `evaluate --dry-run` uses (`workflow.actions.Batches` without a run id) over
firings of the durable-rules engine, so the preview says what evaluation then does. Nothing is written.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulsecheck.errors import RefusedError
from pulsecheck.rules.kpis import KpiNames
from pulsecheck.rules.language import RulesFile, load_rules, windows_used
from pulsecheck.states import permissions
from pulsecheck.storage.facts import compute_facts
from pulsecheck.storage.models import Account, Escalation, EscalationEvent, Ruleset, User
from pulsecheck.workflow import escalations, rulesets
from pulsecheck.workflow.actions import ActionLog, Batches, Planned
from pulsecheck.workflow.evaluation import EvaluationSettings, low_threshold
from pulsecheck.yamlfile import Limits

if TYPE_CHECKING:
    from pulsecheck.storage.db import Database


@dataclass(frozen=True)
class Orphan:
    """An open escalation of a rule the new file does not have: nothing will resolve or refresh it."""

    id: int
    account: str
    rule: str
    status: str
    owner: str | None
    opened_at: datetime


@dataclass
class BlastRadius:
    """What changes: actions (and resolutions) only the new file would take, those only the active rules would,
    how many stay the same, and the escalations it leaves orphaned."""

    as_of: datetime
    against: str | None  # the active ruleset's name, None when there is none
    added: list[Planned] = field(default_factory=list)
    dropped: list[Planned] = field(default_factory=list)
    unchanged: int = 0
    orphans: list[Orphan] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """The summary: escalations and reviews opened and resolved, actions no longer taken, orphans."""
        added = Counter(p.action for p in self.added)
        return {
            "escalations": added["escalate"],
            "reviews": added["open_review"],
            "resolved": added["resolve"],
            "other": sum(n for action, n in added.items() if action not in ("escalate", "open_review", "resolve")),
            "dropped": len(self.dropped),
            "orphaned": len(self.orphans),
        }


def candidate(
    session: Session, path: str, user: User, limits: Limits = Limits()
) -> tuple[RulesFile, KpiNames]:
    """The rules file `user` means to activate, checked as activation will (permission first, then `rules
    validate`'s checks; refused when it is the active one already), with the KPI names it was checked against."""
    reason = permissions.refusal("rules.activate", permissions.actor(user.name, user.role_set))
    if reason:
        raise RefusedError(reason)
    kpis = rulesets.kpi_names(session)
    parsed = rulesets.checked_rules(path, kpis, limits)
    current = rulesets.active_row(session)
    if current is not None and current.sha256 == parsed.sha256:
        raise RefusedError(f"{path} is already the active ruleset (sha256 {parsed.sha256[:12]})")
    return parsed, kpis


def preview(database: Database, config: EvaluationSettings, rules: RulesFile, now: datetime) -> BlastRadius:
    """`blast_radius` now, in a session of its own that is rolled back."""
    session = database.session()
    try:
        return blast_radius(session, config, rules, now, now)
    finally:
        session.rollback()
        session.close()


def blast_radius(
    session: Session, config: EvaluationSettings, rules: RulesFile, as_of: datetime, now: datetime
) -> BlastRadius:
    """The blast radius of activating `rules` now, on the facts as of `as_of`. Reads only: the caller's
    session may be rolled back afterwards."""
    row = rulesets.active_row(session)
    current = load_rules(row.content, row.name) if row is not None else None
    windows: dict[str, set[int]] = {}
    for each in (rules, current):
        for family, days in windows_used(each.rules if each else ()).items():
            windows.setdefault(family, set()).update(days)
    facts = compute_facts(session, as_of, windows, low_threshold(session))
    after = _plan(session, config, rules, facts, now)
    before = _plan(session, config, current, facts, now) if current is not None else ActionLog()
    radius = BlastRadius(as_of, row.name if row is not None else None)
    new, old = Counter(_keys(after)), Counter(_keys(before))
    radius.added = [Planned(*key) for key in sorted((new - old).elements())]
    radius.dropped = [Planned(*key) for key in sorted((old - new).elements())]
    radius.unchanged = sum((new & old).values())
    radius.orphans = orphans(session, {rule.id for rule in rules.rules})
    return radius


def _plan(
    session: Session, config: EvaluationSettings, rules: RulesFile, facts: dict[int, dict[str, Any]], now: datetime
) -> ActionLog:
    """What evaluating `rules` on `facts` would do: the engine's firings through the dry-run planner."""
    from pulsecheck.rules import durable

    firings = durable.evaluate(rules, facts.items(), workers=config.workers)
    return Batches(session, config, rules, facts, firings, now, None, None).run(config.batch_size)


def _keys(log: ActionLog) -> list[tuple[str, str, str, str]]:
    return [(p.account, p.rule, p.action, p.detail) for p in [*log.planned, *log.resolved]]


def orphans(session: Session, keep: set[str]) -> list[Orphan]:
    """Open (or acknowledged) escalations of rules not in `keep`, oldest first."""
    query = (
        select(Escalation, Account.external_id)
        .join(Account, Account.id == Escalation.account_id)
        .where(Escalation.status != "resolved", Escalation.rule_id.not_in(sorted(keep)))
        .order_by(Escalation.opened_at, Escalation.id)
    )
    return [
        Orphan(e.id, account, e.rule_id, e.status, e.owner, e.opened_at) for e, account in session.execute(query)
    ]


def resolve_orphans(session: Session, keep: set[str], user: User, now: datetime, why: str) -> list[Orphan]:
    """Resolve every orphan as `user` (the permission table's `escalation.resolve`), each with an audited event
    saying why (`why`, after the orphan's own rule); returns those resolved."""
    found = orphans(session, keep)
    for orphan in found:
        escalations.resolve(session, orphan.id, user, now)
        reason = f"rule {orphan.rule} removed: {why}"
        session.add(EscalationEvent(escalation_id=orphan.id, event="resolve", actor=user.name, reason=reason, at=now))
    session.flush()
    return found


def activate(
    session: Session,
    path: str,
    user: User,
    now: datetime,
    resolve: bool = False,
    why: str | None = None,
    limits: Limits = Limits(),
) -> tuple[Ruleset, list[Orphan]]:
    """Activate a rules file (`rulesets.activate`) and, with `resolve`, resolve the escalations of the rules it
    removes, in the same transaction; returns the new ruleset row and the escalations resolved."""
    row = rulesets.activate(session, path, user, now, limits)
    if not resolve:
        return row, []
    keep = {rule.id for rule in load_rules(row.content, row.name).rules}
    why = why or f"ruleset {row.name} (sha256 {row.sha256[:12]}) activated by {user.name}"
    return row, resolve_orphans(session, keep, user, now, why)
