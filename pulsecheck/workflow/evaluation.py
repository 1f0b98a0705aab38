"""Evaluation runs: facts → firings (durable-rules) → actions, recorded in `evaluation_runs`.

Stages: facts (read in bulk), engine (every firing computed before anything is written, so a crash of the C
core writes nothing), apply (actions in batches of accounts, each batch its own transaction). The run row is
committed as `running` before the first batch and ends `done`, or `failed` with the error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, selectinload

from pulsecheck.errors import InputError, RefusedError
from pulsecheck.notifications.outbox import Routing
from pulsecheck.rules.evaluator import render_reason
from pulsecheck.rules.language import Rule, RulesFile, leaves, load_rules, windows_used
from pulsecheck.rules.priority import PriorityMatrix
from pulsecheck.storage.facts import compute_facts
from pulsecheck.storage.models import Account, Escalation, EvaluationRun, RuleFiring, Ruleset, User
from pulsecheck.workflow import deviations as deviation
from pulsecheck.workflow import escalations as escalation
from pulsecheck.workflow import reviews

if TYPE_CHECKING:
    from pulsecheck.config import Settings
    from pulsecheck.storage.db import Database

GOVERNORS = {"ops", "manager", "admin"}
DEFAULT_DUE = timedelta(days=3)
Progress = Callable[[str, int, int], None]  # (stage, done, total): stages "facts", "engine", "apply"


@dataclass(frozen=True)
class EvaluationSettings:
    """What evaluation needs from config."""

    priority: PriorityMatrix = field(default_factory=PriorityMatrix)
    routing: Routing = field(default_factory=Routing)
    matrix: dict[str, list[str]] = field(default_factory=dict)  # severity → roles notified by `escalate`
    workers: int = 2
    batch_size: int = 500

    @classmethod
    def from_settings(cls, settings: Settings) -> EvaluationSettings:
        """Built from validated `[priority]`, `[notifications]` (channel, roles, matrix) and `[rules]`."""
        return cls(
            priority=settings.priority.matrix(),
            routing=Routing.from_settings(settings),
            matrix={severity: list(roles) for severity, roles in settings.notifications.matrix.items()},
            workers=settings.rules.workers,
            batch_size=settings.rules.batch_size,
        )


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
    """One action a firing leads to (what dedupe or cooldown suppress is not planned)."""

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
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each stage: facts, engine, apply


def evaluate(
    database: Database,
    config: EvaluationSettings,
    as_of: datetime,
    now: datetime,
    dry_run: bool = False,
    account_id: int | None = None,
    progress: Progress | None = None,
    _crash: bool = False,
) -> EvaluationReport:
    """Evaluate the active rules over the portfolio (or one account) and apply their actions in batches."""
    from pulsecheck.rules import durable

    unit = database.transaction
    report = EvaluationReport(as_of=as_of)
    clock = time.perf_counter()
    with unit() as session:
        row, rules = active_rules(session)
        ruleset_id, scope = row.id, [account_id] if account_id is not None else None
        facts = account_facts(session, rules, as_of, scope)
        query = select(Account.id, Account.external_id)
        if scope is not None:
            query = query.where(Account.id.in_(scope))
        names: dict[int, str] = {account: name for account, name in session.execute(query)}
    report.accounts, report.seconds["facts"] = len(facts), time.perf_counter() - clock
    _tick(progress, "facts", 1, 1)
    clock = time.perf_counter()
    firings = durable.evaluate(
        rules,
        facts.items(),
        workers=config.workers,
        progress=None if progress is None else _counter(progress, "engine", len(facts)),
        _crash=_crash,
    )
    report.firings, report.seconds["engine"] = [(names[a], r) for a, r in firings], time.perf_counter() - clock
    clock = time.perf_counter()
    if dry_run:
        with _rolled_back(database) as session:
            _Batches(session, config, rules, facts, firings, now, report, None, scope).run(config.batch_size, progress)
    else:
        _apply_all(unit, config, rules, ruleset_id, facts, firings, as_of, now, report, progress, scope)
    report.seconds["apply"] = time.perf_counter() - clock
    return report


def _apply_all(
    unit: Callable[[], Any],
    config: EvaluationSettings,
    rules: RulesFile,
    ruleset_id: int,
    facts: dict[int, dict[str, Any]],
    firings: list[tuple[int, str]],
    as_of: datetime,
    now: datetime,
    report: EvaluationReport,
    progress: Progress | None,
    scope: list[int] | None,
) -> None:
    with unit() as session:
        run = EvaluationRun(
            started_at=now, as_of=as_of, ruleset_id=ruleset_id, accounts=len(facts), firings=len(firings),
            actions=0, status="running",
        )  # fmt: skip
        session.add(run)
        session.flush()
        report.run_id = run.id
    try:
        _Batches(unit, config, rules, facts, firings, now, report, report.run_id, scope).run(
            config.batch_size, progress
        )
    except Exception as exc:
        with unit() as session:
            failed = session.get(EvaluationRun, report.run_id)
            assert failed is not None
            failed.status, failed.finished_at, failed.error = "failed", now, f"{type(exc).__name__}: {exc}"[:2000]
        raise
    with unit() as session:
        done = session.get(EvaluationRun, report.run_id)
        assert done is not None
        done.status, done.finished_at, done.actions = "done", now, len(report.actions)


@contextmanager
def _rolled_back(database: Database) -> Iterator[Session]:
    """A session whose changes are never kept (dry run)."""
    session = database.session()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def _tick(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)


def _counter(progress: Progress, stage: str, total: int) -> Callable[[int], None]:
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        progress(stage, done, total)

    return advance


class _Batches:
    """The apply stage: accounts in id order, `size` per transaction (or all in one dry-run session).

    Without a run id it is a dry run: actions are planned, nothing is written.
    """

    def __init__(
        self,
        target: Session | Callable[[], Any],
        config: EvaluationSettings,
        rules: RulesFile,
        facts: dict[int, dict[str, Any]],
        firings: list[tuple[int, str]],
        now: datetime,
        report: EvaluationReport,
        run_id: int | None,
        scope: list[int] | None,
    ) -> None:
        self.target, self.config, self.rules, self.facts, self.now = target, config, rules, facts, now
        self.report, self.run_id, self.scope = report, run_id, set(scope) if scope else None
        self.by_id = {rule.id: rule for rule in rules.rules}
        self.fired: dict[int, list[str]] = {}
        for account, rule_id in firings:
            self.fired.setdefault(account, []).append(rule_id)
        self.clearing = [rule.id for rule in rules.rules if rule.resolve_when_clear]
        self.flag_kinds = {a.params["kind"] for r in rules.rules for a in r.actions if a.kind == "flag_deviation"}
        self.flagged: dict[deviation.Key, str] = {}

    def run(self, size: int, progress: Progress | None) -> None:
        accounts = sorted(self.facts)
        for start in range(0, len(accounts), size):
            batch = accounts[start : start + size]
            with self._session() as session:
                self.batch(session, batch)
            _tick(progress, "apply", start + len(batch), len(accounts))
        if self.flag_kinds and self.run_id is not None:
            with self._session() as session:  # one pass over live deviations, not one per batch
                deviation.sync(session, self.flagged, self.flag_kinds, self.now, scope=self.scope)

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
        applier = _Applier(session, self.config, self.now, self.run_id is None, self.report, open_ones)
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


class _Applier:
    """Turns firings into escalations, reviews, notifications and deviations (or only plans them)."""

    def __init__(
        self,
        session: Session,
        config: EvaluationSettings,
        now: datetime,
        dry_run: bool,
        report: EvaluationReport,
        open_escalations: dict[str | None, Escalation],
    ) -> None:
        self.session, self.config, self.now, self.dry_run, self.report = session, config, now, dry_run, report
        self.open = open_escalations  # by dedupe key, loaded for the whole batch in one query

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
        self.open[created.dedupe_key] = created
        self.notify(
            "escalation_opened",
            params.get("notify") or self.config.matrix.get(severity) or ("owner",),
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

    def resolve_clear(self, rule: Rule, account: Account) -> None:
        found = self.open.get(escalation.dedupe_key(account.id, rule.id))
        if found is None:
            return
        self.report.resolved.append(
            Planned(account.external_id, rule.id, "resolve", f"escalation {found.id}: the rule no longer matches")
        )
        if not self.dry_run:
            escalation.resolve(self.session, found.id, None, self.now)

    def notify(
        self, kind: str, roles: Any, account: Account, review: Any, context: dict[str, Any], event_key: str
    ) -> None:
        if self.dry_run:
            return
        self.config.routing.notify(self.session, kind, roles, account, review, context, event_key, self.now)
