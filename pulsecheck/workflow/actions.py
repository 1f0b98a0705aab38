"""Actions of firings: escalate, open_review, notify and flag_deviation, applied in batches of accounts.

Accounts go in id order, `size` per transaction; only accounts with a firing or an open escalation to clear are
loaded. Each batch reads what it needs in a few bulk queries, plans every action in memory (`workflow.plan`) and
writes the plan set-based: reviews, their audit rows, escalations, notifications and firings each in multi-row
statements; the commit hooks add the audit chain and the scheduler's jobs in bulk too. In a dry run (no run id)
the same plan is made and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from pulsecheck.notifications.outbox import People, enqueue_rows
from pulsecheck.rules.conditions import leaves
from pulsecheck.rules.language import RulesFile
from pulsecheck.rules.priority import cap_p1, priority_score
from pulsecheck.storage.bulk import among, analyze, analyze_threshold, insert_many, table_of, transient
from pulsecheck.storage.models import (
    Account,
    AuditEntry,
    Escalation,
    Notification,
    Review,
    ReviewEvent,
    RuleFiring,
    SchedulerJob,
)
from pulsecheck.workflow import deviations as deviation
from pulsecheck.workflow import escalations as escalation
from pulsecheck.workflow.plan import ActionLog, ActionSettings, Loaded, NewEscalation, Plan, Planned
from pulsecheck.workflow.reviews.bulk import Known, Opening, escalate_many, open_many

__all__ = ["ActionLog", "ActionSettings", "Batches", "Planned"]

# Rows a run may add before PostgreSQL's statistics are refreshed, at least (a tenth of what the tables hold:
# `storage.bulk.analyze_threshold`); doubled after each refresh, so a run analyzes O(log rows) times and the plans
# of its repeated statements follow the tables' growth, and a nightly run adding a few percent does not analyze.
ANALYZE_AFTER = 5_000
GROWN = (Review, ReviewEvent, Escalation, Notification, RuleFiring, AuditEntry, SchedulerJob)

# What a batch reads, built once with its lists bound at execution: building a statement and its IN list per batch
# cost more than running it. Core rows, made plain objects (`storage.bulk.transient`): the ORM loads (and tracks)
# only the few rows a batch changes.
_ACCOUNTS, _ESCALATIONS, _REVIEWS = table_of(Account), table_of(Escalation), table_of(Review)
_ACCOUNTS_OF = select(_ACCOUNTS).where(among(_ACCOUNTS.c.id, "ids"))
_OPEN_ESCALATIONS = select(_ESCALATIONS).where(  # open ones carry their dedupe key; a range on the indexed account
    _ESCALATIONS.c.account_id.between(bindparam("first"), bindparam("last")),
    _ESCALATIONS.c.dedupe_key.is_not(None),
    among(_ESCALATIONS.c.rule_id, "rules"),
)
_OPEN_REVIEWS = (
    select(_REVIEWS)
    .where(among(_REVIEWS.c.account_id, "ids"), _REVIEWS.c.state != "closed")
    .order_by(_REVIEWS.c.id)
)


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
        self.recorded = {rule.id: [leaf.fact for leaf in leaves(rule.when)] for rule in rules.rules}  # a firing's facts
        self.fired: dict[int, list[str]] = {}
        for account, rule_id in firings:
            self.fired.setdefault(account, []).append(rule_id)
        self.clearing = [rule.id for rule in rules.rules if rule.resolve_when_clear]
        # rules whose every action is `escalate`: nothing to plan while their escalation is open (`_acts`)
        self.escalating_only = {rule.id for rule in rules.rules if all(a.kind == "escalate" for a in rule.actions)}
        self.cooled = {rule.id for rule in rules.rules if rule.cooldown}
        self.flag_kinds = {a.params["kind"] for r in rules.rules for a in r.actions if a.kind == "flag_deviation"}
        self.flagged: dict[deviation.Key, str] = {}
        # None: set from the tables' size by the first batch of a recorded run (`storage.bulk.analyze_threshold`)
        self.grown = 0
        self.analyze_after: int | None = None
        self.scored: dict[tuple[int, str], tuple[str, float]] = {}  # (account, severity): matrix priority, score
        self.p1_kept = self._p1_kept()
        self.known: Known | None = None  # read by the first batch with work, for the run

    def _p1_kept(self) -> set[tuple[int, str]]:
        """The (account, rule) escalations of this run that may be P1: the matrix's P1s with the highest priority
        score, at most `p1_share` of all the run's escalations (known before any batch, so every batch agrees)."""
        found: list[tuple[int, str]] = []
        scored: list[tuple[str, float]] = []
        for account, rule_ids in sorted(self.fired.items()):
            facts = self.facts.get(account, {})
            for rule_id in rule_ids:
                for action in self.by_id[rule_id].actions:
                    if action.kind == "escalate" and not action.params.get("priority"):
                        severity = action.params["severity"]
                        found.append((account, rule_id))
                        if (account, severity) not in self.scored:
                            matrix = self.config.priority.priority(severity, facts)
                            self.scored[(account, severity)] = (matrix, priority_score(severity, facts))
                        scored.append(self.scored[(account, severity)])
        capped = cap_p1(scored, self.config.p1_share)
        return {key for key, priority in zip(found, capped, strict=True) if priority == "P1"}

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
        if self.run_id is not None:
            if self.analyze_after is None:
                self.analyze_after = analyze_threshold(session, GROWN, ANALYZE_AFTER)
            if self.grown >= self.analyze_after:
                analyze(session, GROWN)
                self.grown, self.analyze_after = 0, self.analyze_after * 2
        members = set(ids)
        rules = set(self.clearing) | {rule for account in ids for rule in self.fired.get(account, [])}
        open_ones: dict[str, Escalation] = {}
        if rules:
            found = _dicts(session, _OPEN_ESCALATIONS, {"first": ids[0], "last": ids[-1], "rules": sorted(rules)})
            loaded = transient(Escalation, found)
            open_ones = {e.dedupe_key: e for e in loaded if e.account_id in members and e.dedupe_key}
        clearing = set(self.clearing)
        busy = sorted(
            {a for a in ids if a in self.fired} | {e.account_id for e in open_ones.values() if e.rule_id in clearing}
        )
        if not busy:
            return
        if self.known is None:
            self.known = Known.read(session)
        known = self.known.at(session)
        # Accounts whose every firing only escalates what is open already, with nothing open to clear (a nightly
        # re-run's usual case), plan nothing: their rows, reviews and cooldowns are not read.
        acting = [account_id for account_id in busy if self._acts(account_id, open_ones)]
        accounts = _accounts(session, acting, known.people)
        plan = Plan(self.config, self.now, self.log, self._load(session, acting, open_ones))
        plan.p1_kept, plan.scored = self.p1_kept, self.scored
        firings = []
        planned = set(acting)
        for account_id in busy:
            values, fired = self.facts[account_id], self.fired.get(account_id, [])
            account = accounts[account_id] if account_id in planned else None
            for rule_id in fired:
                rule = self.by_id[rule_id]
                if account is not None:
                    for action in rule.actions:
                        plan.apply(rule, action.kind, action.params, account, values, self.flagged)
                firings.append(
                    {
                        "run_id": self.run_id, "account_id": account_id, "rule_id": rule_id, "fired_at": self.now,
                        "facts": {fact: values.get(fact) for fact in self.recorded[rule_id]},
                    }
                )  # fmt: skip
            if account is None:
                continue
            for rule_id in self.clearing:
                if rule_id not in fired:
                    plan.resolve_clear(self.by_id[rule_id], account)
        if self.run_id is not None:
            self.grown += write(session, plan, self.config, self.now, known)
            if firings:
                insert_many(session, RuleFiring, firings)
                self.grown += len(firings)

    def _acts(self, account_id: int, open_ones: dict[str, Escalation]) -> bool:
        """Whether planning this account's firings could do anything: a rule with an action other than `escalate`
        fired, or one escalating with no escalation open for it (`Plan.escalate` returns at once when one is), or
        an open escalation of a `resolve_when_clear` rule that did not fire is to be resolved."""
        fired = self.fired.get(account_id, [])
        for rule_id in fired:
            if rule_id not in self.escalating_only or escalation.dedupe_key(account_id, rule_id) not in open_ones:
                return True
        keys = (escalation.dedupe_key(account_id, rule_id) for rule_id in self.clearing if rule_id not in fired)
        return any(key in open_ones for key in keys)

    def _load(self, session: Session, busy: list[int], open_ones: dict[str, Escalation]) -> Loaded:
        """The open reviews of the busy accounts and the last resolutions their cooldowns ask for."""
        if not busy:
            return Loaded(open_ones, {}, {})
        found = _dicts(session, _OPEN_REVIEWS, {"ids": busy})
        open_reviews = {review.account_id: review for review in transient(Review, found)}
        # (the newest wins)
        cooled = {rule for account in busy for rule in self.fired.get(account, []) if rule in self.cooled}
        resolved = escalation.last_resolutions(session, busy, cooled)
        return Loaded(open_ones, open_reviews, resolved)


def _dicts(session: Session, statement: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a Core query as dicts, fetched at once on the session's connection (a RowMapping per row,
    fetched one at a time, cost more than the dicts made from them)."""
    result = session.connection().execute(statement, params)
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]


def _accounts(session: Session, ids: list[int], known: People) -> dict[int, Account]:
    """The accounts of `ids` with their owners and managers (from `known`), by id: objects carrying the rows of a
    Core query (`storage.bulk.transient`), read-only, outside the session (the ORM's loading of each batch's
    accounts and people cost more than planning them)."""
    if not ids:
        return {}
    rows = _dicts(session, _ACCOUNTS_OF, {"ids": ids})
    people = known.with_ids(row[key] for row in rows for key in ("owner_id", "manager_id") if row[key] is not None)
    made = transient(
        Account,
        (dict(row, owner=people.get(row["owner_id"]), manager=people.get(row["manager_id"])) for row in rows),
    )
    return {account.id: account for account in made}


def _tracked(session: Session, model: Any, ids: set[int]) -> dict[int, Any]:
    """The rows of `ids` as objects of the session, by id: what the batch changes is written at its flush (and
    seen by the commit hooks there)."""
    if not ids:
        return {}
    return {obj.id: obj for obj in session.scalars(select(model).where(among(model.id, values=sorted(ids))))}


def write(session: Session, plan: Plan, config: ActionSettings, now: datetime, known: Known) -> int:
    """Write a batch's plan in bulk, in dependency order (reviews, escalations linking them, notifications naming
    both); returns how many rows it added."""
    opened = dict(zip(map(id, plan.openings), open_many(session, plan.openings, now, known), strict=True))
    tracked = _tracked(session, Review, {review.id for review, _ in plan.raised})
    escalate_many(session, [(tracked[review.id], step) for review, step in plan.raised], now, known)

    def review_of(ref: Opening | Review | None) -> Review | None:
        return opened[id(ref)] if isinstance(ref, Opening) else ref

    rows = []
    for new in plan.escalations:
        linked = review_of(new.review)
        rows.append(dict(new.row, review_id=linked.id if linked else None))
    created = dict(zip(map(id, plan.escalations), escalation.create_many(session, rows, now), strict=True))
    people = known.people  # every user: no query per batch
    messages = []
    for notice in plan.notices:
        context, key = notice.context, notice.key
        if notice.subject is not None:
            subject = created[id(notice.subject)] if isinstance(notice.subject, NewEscalation) else None
            new_id = subject.id if subject else opened[id(notice.subject)].id
            context, key = {**context, notice.id_field: new_id}, key.format(id=new_id)
        review = review_of(notice.review)
        messages += config.routing.messages(
            people, notice.kind, notice.roles, notice.account, review, context, key, now
        )
    enqueue_rows(session, messages)
    closing = _tracked(session, Escalation, {found.id for found in plan.resolving})
    for found in plan.resolving:
        escalation.close(closing[found.id], now)
    events = sum(1 + len(o.raises) for o in plan.openings) + len(plan.raised)
    return len(opened) + events + len(created) + len(messages) + len(plan.resolving)
