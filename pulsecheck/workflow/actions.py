"""Actions of firings: escalate, open_review, notify and flag_deviation, applied in batches of accounts.

Accounts go in id order, `size` per transaction; only accounts with a firing or an open escalation to clear are
loaded. In a dry run (no run id) the same code plans the actions and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, selectinload

from pulsecheck.notifications.outbox import Routing
from pulsecheck.rules.conditions import leaves
from pulsecheck.rules.evaluator import render_reason
from pulsecheck.rules.language import Rule, RulesFile
from pulsecheck.rules.priority import PriorityMatrix
from pulsecheck.storage.models import Account, Escalation, Review, RuleFiring
from pulsecheck.workflow import deviations as deviation
from pulsecheck.workflow import escalations as escalation
from pulsecheck.workflow import reviews

DEFAULT_DUE = timedelta(days=3)


class ActionSettings(Protocol):
    """What applying actions needs from the evaluation settings."""

    @property
    def priority(self) -> PriorityMatrix: ...

    @property
    def routing(self) -> Routing: ...

    @property
    def matrix(self) -> dict[str, list[str]]: ...  # severity → roles notified by `escalate`


@dataclass
class Planned:
    """One action a firing leads to (what dedupe or cooldown suppress is not planned)."""

    account: str
    rule: str
    action: str
    detail: str


@dataclass
class ActionLog:
    """What the actions did, or would do in a dry run: planned actions and escalations resolved as clear."""

    planned: list[Planned] = field(default_factory=list)
    resolved: list[Planned] = field(default_factory=list)


class Batches:
    """The apply stage: accounts in id order, `size` per transaction (or all in one dry-run session).

    Without a run id it is a dry run: actions are planned, nothing is written.
    """

    def __init__(
        self,
        target: Session | Callable[[], Any],
        config: ActionSettings,
        rules: RulesFile,
        facts: dict[int, dict[str, Any]],
        firings: list[tuple[int, str]],
        now: datetime,
        run_id: int | None,
        scope: list[int] | None,
    ) -> None:
        self.target, self.config, self.rules, self.facts, self.now = target, config, rules, facts, now
        self.run_id, self.scope = run_id, set(scope) if scope else None
        self.log = ActionLog()
        self.by_id = {rule.id: rule for rule in rules.rules}
        self.fired: dict[int, list[str]] = {}
        for account, rule_id in firings:
            self.fired.setdefault(account, []).append(rule_id)
        self.clearing = [rule.id for rule in rules.rules if rule.resolve_when_clear]
        self.flag_kinds = {a.params["kind"] for r in rules.rules for a in r.actions if a.kind == "flag_deviation"}
        self.flagged: dict[deviation.Key, str] = {}

    def run(self, size: int, on_batch: Callable[[int, int], None] | None = None) -> ActionLog:
        """Every batch, then the deviations flagged; `on_batch(done, total)` after each batch."""
        accounts = sorted(self.facts)
        for start in range(0, len(accounts), size):
            batch = accounts[start : start + size]
            with self._session() as session:
                self.batch(session, batch)
            if on_batch is not None:
                on_batch(start + len(batch), len(accounts))
        if self.flag_kinds and self.run_id is not None:
            with self._session() as session:  # one pass over live deviations, not one per batch
                deviation.sync(session, self.flagged, self.flag_kinds, self.now, scope=self.scope)
        return self.log

    def _session(self) -> Any:
        return nullcontext(self.target) if isinstance(self.target, Session) else self.target()

    def batch(self, session: Session, ids: list[int]) -> None:
        """One batch of accounts (ids ascending): only those with a firing or an escalation to clear are loaded."""
        members = set(ids)
        rules = set(self.clearing) | {rule for account in ids for rule in self.fired.get(account, [])}
        open_ones: dict[str | None, Escalation] = {}
        if rules:  # open escalations carry their dedupe key; a range on the indexed account keeps the query small
            found = select(Escalation).where(
                Escalation.account_id.between(ids[0], ids[-1]),
                Escalation.dedupe_key.is_not(None),
                Escalation.rule_id.in_(sorted(rules)),
            )
            open_ones = {e.dedupe_key: e for e in session.scalars(found) if e.account_id in members}
        clearing = set(self.clearing)
        busy = {a for a in ids if a in self.fired} | {e.account_id for e in open_ones.values() if e.rule_id in clearing}
        if not busy:
            return
        query = (
            select(Account)
            .where(Account.id.in_(sorted(busy)))
            .options(selectinload(Account.owner), selectinload(Account.manager))
        )
        accounts = {a.id: a for a in session.scalars(query)}
        applier = Applier(session, self.config, self.now, self.run_id is None, self.log, open_ones)
        firings = []
        for account_id in sorted(busy):
            account, values, fired = accounts[account_id], self.facts[account_id], self.fired.get(account_id, [])
            for rule_id in fired:
                rule = self.by_id[rule_id]
                for action in rule.actions:
                    applier.apply(rule, action.kind, action.params, account, values, self.flagged)
                firings.append(
                    {
                        "run_id": self.run_id, "account_id": account_id, "rule_id": rule_id, "fired_at": self.now,
                        "facts": {leaf.fact: values.get(leaf.fact) for leaf in leaves(rule.when)},
                    }
                )  # fmt: skip
            for rule_id in self.clearing:
                if rule_id not in fired:
                    applier.resolve_clear(self.by_id[rule_id], account)
        if self.run_id is not None and firings:
            session.execute(insert(RuleFiring), firings)


class Applier:
    """Turns firings into escalations, reviews, notifications and deviations (or only plans them)."""

    def __init__(
        self,
        session: Session,
        config: ActionSettings,
        now: datetime,
        dry_run: bool,
        log: ActionLog,
        open_escalations: dict[str | None, Escalation],
    ) -> None:
        self.session, self.config, self.now, self.dry_run, self.log = session, config, now, dry_run, log
        self.open = open_escalations  # by dedupe key, loaded for the whole batch in one query

    def plan(self, account: Account, rule: Rule, action: str, detail: str) -> None:
        """Record an action as done (or, in a dry run, as what would be done)."""
        self.log.planned.append(Planned(account.external_id, rule.id, action, detail))

    def apply(
        self,
        rule: Rule,
        kind: str,
        params: Mapping[str, Any],
        account: Account,
        facts: Mapping[str, Any],
        flagged: dict[deviation.Key, str],
    ) -> None:
        """One action of a rule that fired for an account; `flag_deviation` only collects into `flagged`."""
        if kind == "escalate":
            self.escalate(rule, params, account, facts)
        elif kind == "open_review":
            self.open_review(rule, params, account)
        elif kind == "notify":
            message = render_reason(params.get("message") or rule.description or rule.id, facts)
            context = {"rule_id": rule.id, "message": message}
            event_key = f"notify:{rule.id}:{account.id}:{self.now.date()}"
            self.notify("generic", params["roles"], account, None, context, event_key)
            self.plan(account, rule, "notify", f"{', '.join(params['roles'])}: {message}")
        elif kind == "flag_deviation":
            detail = render_reason(params.get("detail") or rule.description or rule.id, facts)
            flagged[(account.id, params["kind"], rule.id)] = detail
            self.plan(account, rule, "flag_deviation", f"{params['kind']}: {detail}")

    def escalate(self, rule: Rule, params: Mapping[str, Any], account: Account, facts: Mapping[str, Any]) -> None:
        """Open an escalation (one open per account and rule, none in cooldown), link a review, notify."""
        if escalation.dedupe_key(account.id, rule.id) in self.open:
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
            self.session, account.id, rule.id, severity, priority, reason, owner, due_at, self.now,
            review.id if review else None,
        )  # fmt: skip
        context = {
            "account_name": account.name, "account_id": account.external_id, "escalation_id": created.id,
            "severity": severity, "priority": priority, "reason": reason, "rule_id": rule.id, "due_at": due_at,
            "level": 0,
        }  # fmt: skip
        self.open[created.dedupe_key] = created
        roles = params.get("notify") or self.config.matrix.get(severity) or ("owner",)
        self.notify("escalation_opened", roles, account, review, context, f"escalation:{created.id}:0")

    def _review_for(self, rule: Rule, account: Account, priority: str, due_at: datetime, reason: str) -> Review | None:
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

    def _new_out_of_cycle(self, account: Account, rule: Rule, priority: str, due_at: datetime) -> Review:
        """A draft out-of-cycle review opened by a rule, reviewed by the account owner."""
        return reviews.new_review(
            self.session,
            account.external_id,
            reviews.SYSTEM_ACTOR,
            self.now,
            due_at - self.now,
            kind="rule",
            priority=priority,
            cause=f"rule:{rule.id}",
            due=due_at,
        )

    def open_review(self, rule: Rule, params: Mapping[str, Any], account: Account) -> None:
        """Open an out-of-cycle review for the owner when the account has none open, and notify."""
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

    def resolve_clear(self, rule: Rule, account: Account) -> None:
        """Resolve the open escalation of a `resolve_when_clear` rule that no longer matches the account."""
        found = self.open.get(escalation.dedupe_key(account.id, rule.id))
        if found is None:
            return
        self.log.resolved.append(
            Planned(account.external_id, rule.id, "resolve", f"escalation {found.id}: the rule no longer matches")
        )
        if not self.dry_run:
            escalation.resolve(self.session, found.id, None, self.now)

    def notify(
        self,
        kind: str,
        roles: Iterable[str],
        account: Account,
        review: Review | None,
        context: dict[str, Any],
        event_key: str,
    ) -> None:
        """Queue a notification to the roles (nothing in a dry run)."""
        if self.dry_run:
            return
        self.config.routing.notify(self.session, kind, roles, account, review, context, event_key, self.now)
