"""Evaluation runs: facts → firings (durable-rules) → actions, recorded, in one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError, RefusedError
from pulsecheck.rules.evaluator import render_reason
from pulsecheck.rules.language import Rule, RulesFile, leaves, load_rules, windows_used
from pulsecheck.rules.priority import PriorityMatrix
from pulsecheck.storage.models import Account, EvaluationRun, RuleFiring, Ruleset, User
from pulsecheck.workflow import deviation, escalation
from pulsecheck.workflow import review as reviews
from pulsecheck.workflow.facts import compute_facts

GOVERNORS = {"ops", "manager", "admin"}
DEFAULT_DUE = timedelta(days=3)


@dataclass(frozen=True)
class EvaluationSettings:
    """What evaluation needs from config."""

    priority: PriorityMatrix = field(default_factory=PriorityMatrix)
    channel: str = "log"
    role_lists: Mapping[str, list[str]] = field(default_factory=dict)
    workers: int = 2


def activate(session: Session, path: str | Path, user: User, now: datetime) -> Ruleset:
    """Store a validated rules file as the active ruleset (ops, manager or admin)."""
    if not user.role_set & GOVERNORS:
        raise RefusedError(f"{user.name} cannot activate rules (needs ops or manager)")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    parsed = load_rules(text, str(path))
    current = active_row(session)
    if current is not None and current.sha256 == parsed.sha256:
        raise RefusedError(f"{path} is already the active ruleset (sha256 {parsed.sha256[:12]})")
    if current is not None:
        current.active = False
    row = Ruleset(
        name=Path(path).name, sha256=parsed.sha256, content=text, activated_by=user.name, activated_at=now, active=True
    )
    session.add(row)
    session.flush()
    return row


def active_row(session: Session) -> Ruleset | None:
    return session.scalar(select(Ruleset).where(Ruleset.active.is_(True)))


def active_rules(session: Session) -> tuple[Ruleset, RulesFile]:
    """The active ruleset, parsed; refused when none is active."""
    row = active_row(session)
    if row is None:
        raise RefusedError("no active ruleset: run `pulsecheck rules activate FILE` first")
    return row, load_rules(row.content, row.name)


def low_threshold(session: Session) -> float | None:
    """The lowest bucket's threshold of the approved model (what a 'low' score is)."""
    from pulsecheck.workflow.scoring import approved_model

    try:
        _, model = approved_model(session)
    except RefusedError:
        return None
    return model.buckets[0].below


def account_facts(
    session: Session, rules: RulesFile, as_of: datetime, account_ids: list[int] | None = None
) -> dict[int, dict[str, Any]]:
    """Facts for the accounts, with the windows these rules use."""
    return compute_facts(session, as_of, windows_used(rules.rules), low_threshold(session), account_ids)


@dataclass
class Planned:
    """One action a firing leads to; `apply` is False for what dedupe or cooldown suppress."""

    account: str
    rule: str
    action: str
    detail: str


@dataclass
class EvaluationReport:
    as_of: datetime
    accounts: int = 0
    firings: list[tuple[str, str]] = field(default_factory=list)
    actions: list[Planned] = field(default_factory=list)
    resolved: list[Planned] = field(default_factory=list)
    run_id: int | None = None


def evaluate(
    session: Session,
    config: EvaluationSettings,
    as_of: datetime,
    now: datetime,
    dry_run: bool = False,
    account_id: int | None = None,
    _crash: bool = False,
) -> EvaluationReport:
    """Evaluate the active rules over the portfolio (or one account) and apply their actions."""
    from pulsecheck.rules import durable

    row, rules = active_rules(session)
    scope = [account_id] if account_id is not None else None
    facts = account_facts(session, rules, as_of, scope)
    firings = durable.evaluate(rules, facts.items(), workers=config.workers, _crash=_crash)
    accounts = {a.id: a for a in session.scalars(select(Account).where(Account.id.in_(list(facts))))}
    by_id = {rule.id: rule for rule in rules.rules}
    report = EvaluationReport(
        as_of=as_of, accounts=len(facts), firings=[(accounts[a].external_id, r) for a, r in firings]
    )
    applier = _Applier(session, config, now, dry_run, report)
    flagged: dict[deviation.Key, str] = {}
    for account_id_, rule_id in firings:
        rule, account, values = by_id[rule_id], accounts[account_id_], facts[account_id_]
        for action in rule.actions:
            applier.apply(rule, action.kind, action.params, account, values, flagged)
    fired = set(firings)
    for rule in rules.rules:
        if rule.resolve_when_clear:
            applier.resolve_clear(rule, [a for a in accounts if (a, rule.id) not in fired])
    if dry_run:
        return report
    flag_kinds = {a.params["kind"] for r in rules.rules for a in r.actions if a.kind == "flag_deviation"}
    if flag_kinds:
        deviation.sync(session, flagged, flag_kinds, now, scope=set(scope) if scope else None)
    run = EvaluationRun(
        started_at=now,
        finished_at=now,
        as_of=as_of,
        ruleset_id=row.id,
        accounts=len(facts),
        firings=len(firings),
        actions=len(report.actions),
        status="done",
    )
    session.add(run)
    session.flush()
    session.add_all(
        RuleFiring(
            run_id=run.id,
            account_id=a,
            rule_id=r,
            fired_at=now,
            facts={leaf.fact: facts[a].get(leaf.fact) for leaf in leaves(by_id[r].when)},
        )
        for a, r in firings
    )
    session.flush()
    report.run_id = run.id
    return report


class _Applier:
    """Turns firings into escalations, reviews, notifications and deviations (or only plans them)."""

    def __init__(
        self, session: Session, config: EvaluationSettings, now: datetime, dry_run: bool, report: EvaluationReport
    ) -> None:
        self.session, self.config, self.now, self.dry_run, self.report = session, config, now, dry_run, report

    def plan(self, account: Account, rule: Rule, action: str, detail: str) -> None:
        self.report.actions.append(Planned(account.external_id, rule.id, action, detail))

    def apply(
        self,
        rule: Rule,
        kind: str,
        params: Mapping[str, Any],
        account: Account,
        facts: Mapping[str, Any],
        flagged: dict[deviation.Key, str],
    ) -> None:
        if kind == "escalate":
            self.escalate(rule, params, account, facts)
        elif kind == "open_review":
            self.open_review(rule, params, account, facts)
        elif kind == "notify":
            message = render_reason(params.get("message") or rule.description or rule.id, facts)
            self.notify(
                "generic",
                params["roles"],
                account,
                None,
                {"rule_id": rule.id, "message": message},
                f"notify:{rule.id}:{account.id}:{self.now.date()}",
            )
            self.plan(account, rule, "notify", f"{', '.join(params['roles'])}: {message}")
        elif kind == "flag_deviation":
            detail = render_reason(params.get("detail") or rule.description or rule.id, facts)
            flagged[(account.id, params["kind"], rule.id)] = detail
            self.plan(account, rule, "flag_deviation", f"{params['kind']}: {detail}")

    def escalate(self, rule: Rule, params: Mapping[str, Any], account: Account, facts: Mapping[str, Any]) -> None:
        if escalation.open_escalation(self.session, account.id, rule.id) is not None:
            return  # one open escalation per (account, rule)
        if escalation.in_cooldown(self.session, account.id, rule.id, self.now, rule.cooldown):
            return
        severity = params["severity"]
        priority = params.get("priority") or self.config.priority.priority(severity, facts)
        reason = render_reason(params.get("reason") or rule.description or rule.id, facts)
        due_at = self.now + (params.get("due_in") or DEFAULT_DUE)
        owner = account.owner.name if account.owner else None
        self.plan(account, rule, "escalate", f"{severity} {priority} to {owner or '(no owner)'}: {reason}")
        if self.dry_run:
            return
        review = self._review_for(rule, account, priority, due_at, reason)
        created = escalation.create(
            self.session,
            account.id,
            rule.id,
            severity,
            priority,
            reason,
            owner,
            due_at,
            self.now,
            review.id if review else None,
        )
        context = {
            "account_name": account.name,
            "account_id": account.external_id,
            "escalation_id": created.id,
            "severity": severity,
            "priority": priority,
            "reason": reason,
            "rule_id": rule.id,
            "due_at": due_at,
            "level": 0,
        }
        self.notify(
            "escalation_opened",
            params.get("notify") or ("owner",),
            account,
            review,
            context,
            f"escalation:{created.id}:0",
        )

    def _review_for(self, rule: Rule, account: Account, priority: str, due_at: datetime, reason: str):  # type: ignore[no-untyped-def]
        """Escalate the open review (reopening an approved one), or open an out-of-cycle one."""
        review = reviews.open_review_for(self.session, account.id)
        cause, comment = f"rule:{rule.id}", reason
        if review is None:
            if account.owner is None:
                return None
            return self._new_out_of_cycle(account, rule, priority, due_at)
        if review.state == "approved":
            reviews.transition(self.session, review.id, "reopen", reviews.SYSTEM_ACTOR, self.now, comment, cause)
        reviews.escalate(self.session, review, self.now, priority, due_at, cause, comment)
        return review

    def _new_out_of_cycle(self, account: Account, rule: Rule, priority: str, due_at: datetime):  # type: ignore[no-untyped-def]
        """A draft out-of-cycle review opened by a rule, reviewed by the account owner."""
        return reviews.new_review(
            self.session,
            account.external_id,
            reviews.SYSTEM_ACTOR,
            self.now,
            due_at - self.now,
            kind="out_of_cycle",
            priority=priority,
            cause=f"rule:{rule.id}",
            due=due_at,
        )

    def open_review(self, rule: Rule, params: Mapping[str, Any], account: Account, facts: Mapping[str, Any]) -> None:
        existing = reviews.open_review_for(self.session, account.id)
        if existing is not None or account.owner is None:
            return
        priority = params.get("priority") or "P2"
        due_at = self.now + (params.get("due_in") or timedelta(days=7))
        self.plan(
            account,
            rule,
            "open_review",
            f"{priority} out-of-cycle review for {account.owner.name}, due {due_at:%Y-%m-%d}",
        )
        if self.dry_run:
            return
        review = self._new_out_of_cycle(account, rule, priority, due_at)
        context = {
            "account_name": account.name,
            "account_id": account.external_id,
            "review_id": review.id,
            "rule_id": rule.id,
            "reason": rule.description,
            "priority": priority,
            "due_at": due_at,
        }
        self.notify(
            "review_opened", params.get("notify") or ("owner",), account, review, context, f"review-opened:{review.id}"
        )

    def resolve_clear(self, rule: Rule, account_ids: list[int]) -> None:
        for account_id in account_ids:
            found = escalation.open_escalation(self.session, account_id, rule.id)
            if found is None:
                continue
            self.report.resolved.append(
                Planned(
                    found.account.external_id, rule.id, "resolve", f"escalation {found.id}: the rule no longer matches"
                )
            )
            if not self.dry_run:
                escalation.resolve(self.session, found.id, None, self.now)

    def notify(
        self, kind: str, roles: Any, account: Account, review: Any, context: dict[str, Any], event_key: str
    ) -> None:
        if self.dry_run:
            return
        from pulsecheck.notifications import outbox

        context = {"account_name": account.name, "account_id": account.external_id, **context}
        people = outbox.resolve_roles(self.session, roles, account, review, self.config.role_lists)
        outbox.enqueue(self.session, kind, context, people, event_key, self.config.channel, self.now)
