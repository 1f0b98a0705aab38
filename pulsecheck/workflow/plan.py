"""The one planner of `evaluate`: what the firings of a batch of accounts lead to, decided in memory from rows
read in bulk. A dry run prints the plan; a real run writes exactly that plan (`workflow.actions`), so the two
cannot disagree: a review opened through an escalation is planned as an `open_review` of its own, and an account
gets at most one new review however many rules ask for one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from pulsecheck.notifications.outbox import Routing
from pulsecheck.rules.evaluator import render_reason
from pulsecheck.rules.language import Rule
from pulsecheck.rules.priority import PriorityMatrix, priority_score
from pulsecheck.storage.models import Account, Escalation, Review
from pulsecheck.workflow import deviations as deviation
from pulsecheck.workflow import escalations as escalation
from pulsecheck.workflow.reviews.bulk import Opening, Raise

DEFAULT_DUE = timedelta(days=3)
REVIEW_DUE = timedelta(days=7)


class ActionSettings(Protocol):
    """What applying actions needs from the evaluation settings."""

    @property
    def priority(self) -> PriorityMatrix: ...

    @property
    def routing(self) -> Routing: ...

    @property
    def matrix(self) -> dict[str, list[str]]: ...  # severity → roles notified by `escalate`

    @property
    def p1_share(self) -> float: ...  # at most this share of a run's escalations stays P1

    @property
    def fallback_owner(self) -> str | None: ...  # `[escalation] fallback_owner`

    @property
    def segment_owners(self) -> dict[str, str]: ...  # segment → default owner (`[segments.<name>] owner`)


def fallback(config: ActionSettings, account: Account) -> tuple[str | None, Sequence[str], str | None]:
    """Who takes an escalation: (owner, the roles standing in for `owner`, a note saying why). The account's
    owner; else its segment's default owner or `fallback_owner`; else nobody owns it and the admins are told."""
    if account.owner is not None:
        return account.owner.name, ("owner",), None
    name = config.segment_owners.get(account.segment or "") or config.fallback_owner
    if name:
        return name, (f"user:{name}",), f"{account.name} has no owner: this goes to {name}, its fallback owner."
    return None, ("admin",), f"{account.name} has no owner and no fallback owner is set: this goes to the admins."


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


@dataclass
class NewEscalation:
    """An escalation to open: its row (without ids) and the review it links, if any."""

    row: dict[str, Any]
    review: Opening | Review | None


@dataclass
class Notice:
    """A notification to queue once the rows it names have ids: `subject` (a new review or escalation) gives the
    id that `id_field` of the context and `{id}` in the event key stand for."""

    kind: str
    roles: Sequence[str]
    account: Account
    review: Opening | Review | None
    context: dict[str, Any]
    key: str
    subject: Opening | NewEscalation | None = None
    id_field: str = ""


@dataclass
class Loaded:
    """What a batch reads before planning, in a few bulk queries."""

    escalations: dict[str, Escalation]  # open ones, by dedupe key
    reviews: dict[int, Review]  # the open (not closed) review of each account that has one
    resolved: dict[tuple[int, str], datetime]  # last resolution of each (account, rule), for cooldowns


class Plan:
    """The actions of one batch, in the order the firings come (accounts ascending, then rules, then actions)."""

    def __init__(self, config: ActionSettings, now: datetime, log: ActionLog, loaded: Loaded) -> None:
        self.config, self.now, self.log = config, now, log
        self.open = loaded.escalations
        self.resolved = loaded.resolved
        self.reviews: dict[int, Opening | Review] = dict(loaded.reviews)
        self.openings: list[Opening] = []
        self.raised: list[tuple[Review, Raise]] = []
        self.escalations: list[NewEscalation] = []
        self.notices: list[Notice] = []
        self.resolving: list[Escalation] = []
        self.planned_keys: set[str] = set()
        self.p1_kept: set[tuple[int, str]] | None = None  # (account, rule) allowed P1 in this run; None: no cap
        self.scored: dict[tuple[int, str], tuple[str, float]] = {}  # (account, severity): matrix priority, score

    def add(self, account: Account, rule: Rule, action: str, detail: str) -> None:
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
            key = f"notify:{rule.id}:{account.id}:{self.now.date()}"
            context = {"rule_id": rule.id, "message": message}
            self.notices.append(Notice("generic", params["roles"], account, None, context, key))
            self.add(account, rule, "notify", f"{', '.join(params['roles'])}: {message}")
        elif kind == "flag_deviation":
            detail = render_reason(params.get("detail") or rule.description or rule.id, facts)
            flagged[(account.id, params["kind"], rule.id)] = detail
            self.add(account, rule, "flag_deviation", f"{params['kind']}: {detail}")

    def escalate(self, rule: Rule, params: Mapping[str, Any], account: Account, facts: Mapping[str, Any]) -> None:
        """Open an escalation (one open per account and rule, none in cooldown), link a review, notify."""
        key = escalation.dedupe_key(account.id, rule.id)
        if key in self.open or key in self.planned_keys:
            return  # one open escalation per (account, rule)
        if escalation.cooling(self.resolved.get((account.id, rule.id)), self.now, rule.cooldown):
            return
        severity = params["severity"]
        known = self.scored.get((account.id, severity))  # computed when the run capped its P1s
        score = known[1] if known else priority_score(severity, facts)
        priority = params.get("priority") or (known[0] if known else self.config.priority.priority(severity, facts))
        if priority == "P1" and not params.get("priority") and self.p1_kept is not None:
            priority = "P1" if (account.id, rule.id) in self.p1_kept else "P2"
        reason = render_reason(params.get("reason") or rule.description or rule.id, facts)
        due_at = self.now + (params.get("due_in") or DEFAULT_DUE)
        owner, stand_ins, note = fallback(self.config, account)
        who = owner if account.owner else f"{owner} (fallback owner)" if owner else "the admins (no owner)"
        detail = f"{severity} {priority} to {who}: {reason}"
        existing = self.reviews.get(account.id)
        if isinstance(existing, Review):
            reopened = "reopened and escalated" if existing.state == "approved" else "escalated"
            detail += f"; review {existing.id} {reopened}"
        self.add(account, rule, "escalate", detail)
        review = self._review_for(rule, account, priority, due_at, reason)
        row = {
            "account_id": account.id, "rule_id": rule.id, "severity": severity, "priority": priority,
            "priority_score": score, "reason": reason, "owner": owner, "due_at": due_at,
        }  # fmt: skip
        new = NewEscalation(row, review)
        self.escalations.append(new)
        self.planned_keys.add(key)
        context = {
            "escalation_id": None, "severity": severity, "priority": priority, "reason": reason, "rule_id": rule.id,
            "due_at": due_at, "level": 0, "owner_note": note,
        }  # fmt: skip  (the id is filled in once written)
        roles = params.get("notify") or self.config.matrix.get(severity) or ("owner",)
        if account.owner is None:  # never to nobody: the fallback owner or the admins stand in for the owner
            roles = [*dict.fromkeys([*(role for role in roles if role != "owner"), *stand_ins])]
        self.notices.append(
            Notice("escalation_opened", roles, account, review, context, "escalation:{id}:0", new, "escalation_id")
        )

    def _review_for(
        self, rule: Rule, account: Account, priority: str, due_at: datetime, reason: str
    ) -> Opening | Review | None:
        """Escalate the open review (reopening an approved one), or open an out-of-cycle one for the owner."""
        current = self.reviews.get(account.id)
        cause = f"rule:{rule.id}"
        if current is None:
            if account.owner is None:
                return None
            self._open(account, rule, priority, due_at, " (escalation)")
            return self.reviews[account.id]
        step = Raise(priority, due_at, cause, reason)
        if isinstance(current, Opening):
            current.raises.append(step)
        else:
            self.raised.append((current, step))
        return current

    def open_review(self, rule: Rule, params: Mapping[str, Any], account: Account) -> None:
        """Open an out-of-cycle review for the owner when the account has none open, and notify."""
        if self.reviews.get(account.id) is not None or account.owner is None:
            return
        due_at = self.now + (params.get("due_in") or REVIEW_DUE)
        opening = self._open(account, rule, params.get("priority") or "P2", due_at)
        context = {
            "review_id": None, "rule_id": rule.id, "reason": rule.description, "priority": opening.priority,
            "due_at": due_at,
        }  # fmt: skip
        roles = params.get("notify") or ("owner",)
        self.notices.append(
            Notice("review_opened", roles, account, opening, context, "review-opened:{id}", opening, "review_id")
        )

    def _open(self, account: Account, rule: Rule, priority: str, due_at: datetime, why: str = "") -> Opening:
        assert account.owner is not None
        opening = Opening(account, priority, due_at, f"rule:{rule.id}")
        self.openings.append(opening)
        self.reviews[account.id] = opening
        detail = f"{priority} out-of-cycle review for {account.owner.name}, due {due_at:%Y-%m-%d}{why}"
        self.add(account, rule, "open_review", detail)
        return opening

    def resolve_clear(self, rule: Rule, account: Account) -> None:
        """Resolve the open escalation of a `resolve_when_clear` rule that no longer matches the account."""
        found = self.open.get(escalation.dedupe_key(account.id, rule.id))
        if found is None:
            return
        self.log.resolved.append(
            Planned(account.external_id, rule.id, "resolve", f"escalation {found.id}: the rule no longer matches")
        )
        self.resolving.append(found)
