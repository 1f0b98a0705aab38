"""The mapped classes a review's changes do not use, declared only when a command first asks for one:
`pulsecheck.storage.models` loads this module on the first access to one of its names (`from
pulsecheck.storage.models import Escalation`), or for the whole schema (`models.declare_all`).

Declaring a class (its mapper and attribute instrumentation) is work done at import whether or not the command uses
the class. They live in `models.SecondBase`'s registry, so a command that declares them configures them only if it
uses one. Their tables are in `more_tables`, but for `ScoringModelVersion`'s and `Ruleset`'s, which tables in
`tables` point to.

No `from __future__ import annotations`, as in `models`.
"""

from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Mapped, relationship

from pulsecheck.storage import more_tables, tables
from pulsecheck.storage.models import Account, SecondBase


class ScoringModelVersion(SecondBase):
    __table__ = tables.SCORING_MODELS  # in `tables`: tables there point to it
    id: Mapped[int]
    version: Mapped[str]
    content: Mapped[str]
    sha256: Mapped[str]
    status: Mapped[str]  # draft | approved | retired
    approved_by: Mapped[str | None]
    approved_at: Mapped[datetime | None]
    model_data: Mapped[str | None]


class Ruleset(SecondBase):
    __table__ = tables.RULESETS  # in `tables`: tables there point to it
    id: Mapped[int]
    name: Mapped[str]
    sha256: Mapped[str]
    content: Mapped[str]
    activated_by: Mapped[str]
    activated_at: Mapped[datetime]
    active: Mapped[bool]


class KpiReading(SecondBase):
    __table__ = more_tables.KPI_READINGS
    id: Mapped[int]
    account_id: Mapped[int]
    kpi: Mapped[str]
    value: Mapped[float]
    observed_at: Mapped[datetime]
    source: Mapped[str | None]
    imported_at: Mapped[datetime]


class SurveyResponse(SecondBase):
    __table__ = more_tables.SURVEY_RESPONSES
    id: Mapped[int]
    account_id: Mapped[int]
    kind: Mapped[str]
    score: Mapped[float]
    max_score: Mapped[float]
    responded_at: Mapped[datetime]
    imported_at: Mapped[datetime]


class Issue(SecondBase):
    __table__ = more_tables.ISSUES
    id: Mapped[int]
    external_id: Mapped[str]
    account_id: Mapped[int]
    kind: Mapped[str]
    severity: Mapped[str]
    status: Mapped[str]
    title: Mapped[str | None]
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]


class LatestSnapshot(SecondBase):
    """Each account's newest score snapshot (by `as_of`), kept by database triggers on `score_snapshots`
    (migration 0021) whoever writes them: the live portfolio joins it instead of finding the newest of every
    account's snapshots on each request."""

    __table__ = more_tables.LATEST_SNAPSHOTS
    account_id: Mapped[int]
    as_of: Mapped[datetime]
    score: Mapped[float | None]
    bucket: Mapped[str | None]


class BookChange(SecondBase):
    """A transaction that wrote the book the live portfolio shows (accounts, users, score snapshots, escalations,
    issues, scoring models), by its transaction id: PostgreSQL triggers insert one row per such transaction
    (migration 0023), so that a worker tells in one index probe whether figures it kept are still current
    (`storage.changes`). One row per transaction and no shared counter: writers never wait for each other."""

    __table__ = more_tables.BOOK_CHANGES
    xid: Mapped[int]


class BookChangesPruned(SecondBase):
    """One row: the newest transaction id whose `book_changes` row was pruned (a kept figure older than that
    cannot know what the pruned rows said, and is computed again)."""

    __table__ = more_tables.BOOK_CHANGES_PRUNED
    id: Mapped[int]
    upto: Mapped[int]


class Scorecard(SecondBase):
    """A scorecard submitted for approval: the content it was submitted with (and its digest), four-eyes."""

    __table__ = more_tables.SCORECARDS
    id: Mapped[int]
    account_id: Mapped[int]
    as_of: Mapped[datetime]
    content: Mapped[dict[str, Any]]
    digest: Mapped[str]
    state: Mapped[str]
    submitted_by: Mapped[str]
    submitted_at: Mapped[datetime]
    approver: Mapped[str | None]
    approved_by: Mapped[str | None]
    decided_at: Mapped[datetime | None]
    comment: Mapped[str | None]
    decision_comment: Mapped[str | None]
    version_id: Mapped[int]
    __mapper_args__ = {"version_id_col": __table__.c.version_id}  # two approvers at once: the second one conflicts


class Cashflow(SecondBase):
    """An account's net cash flow C_t of period t (0, 1, ...), for its NPV."""

    __table__ = more_tables.CASHFLOWS
    account_id: Mapped[int]
    period: Mapped[int]
    amount: Mapped[float]


class AccountFinancials(SecondBase):
    """An account's unit economics for its LTV (monthly ARPU and cost to serve, CAC) and its NPV rate."""

    __table__ = more_tables.ACCOUNT_FINANCIALS
    account_id: Mapped[int]
    arpu: Mapped[float]
    cac: Mapped[float]
    cost_to_serve: Mapped[float]
    expected_tenure_months: Mapped[float | None]
    discount_rate: Mapped[float | None]


class Deviation(SecondBase):
    __table__ = more_tables.DEVIATIONS
    id: Mapped[int]
    account_id: Mapped[int | None]
    kind: Mapped[str]
    subject: Mapped[str]
    detail: Mapped[str]
    found_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    status: Mapped[str]
    accepted_by: Mapped[str | None]
    reason: Mapped[str | None]
    accepted_until: Mapped[date | None]
    resolved_at: Mapped[datetime | None]


class EvaluationShard(SecondBase):
    """One shard of a sharded run: the accounts whose block of ids (`id // block`) is `shard` modulo `shards`,
    up to `last_account`. Any worker process sharing the database claims it (`workflow.shards`)."""

    __table__ = more_tables.EVALUATION_SHARDS
    id: Mapped[int]
    run_id: Mapped[int]
    shard: Mapped[int]
    shards: Mapped[int]
    block: Mapped[int]
    last_account: Mapped[int]
    status: Mapped[str]
    holder: Mapped[str | None]
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int]
    accounts: Mapped[int]
    firings: Mapped[int]
    actions: Mapped[int]
    error: Mapped[str | None]
    finished_at: Mapped[datetime | None]


class RuleFiring(SecondBase):
    __table__ = more_tables.RULE_FIRINGS
    id: Mapped[int]
    run_id: Mapped[int]
    account_id: Mapped[int]
    rule_id: Mapped[str]
    facts: Mapped[dict[str, Any]]
    fired_at: Mapped[datetime]


class Escalation(SecondBase):
    __table__ = more_tables.ESCALATIONS
    id: Mapped[int]
    account_id: Mapped[int]
    review_id: Mapped[int | None]
    rule_id: Mapped[str]
    severity: Mapped[str]
    priority: Mapped[str]
    priority_score: Mapped[float | None]
    reason: Mapped[str]
    owner: Mapped[str | None]
    level: Mapped[int]
    due_at: Mapped[datetime | None]
    opened_at: Mapped[datetime]
    status: Mapped[str]
    acknowledged_by: Mapped[str | None]
    resolved_at: Mapped[datetime | None]
    dedupe_key: Mapped[str | None]
    account: Mapped[Account] = relationship()


class EscalationEvent(SecondBase):
    """Who resolved an escalation on purpose, when and why (append-only; joins the audit chain)."""

    __table__ = more_tables.ESCALATION_EVENTS
    id: Mapped[int]
    escalation_id: Mapped[int]
    event: Mapped[str]
    actor: Mapped[str]
    reason: Mapped[str]
    at: Mapped[datetime]


class Notification(SecondBase):
    __table__ = more_tables.NOTIFICATIONS
    id: Mapped[int]
    dedupe_key: Mapped[str]
    kind: Mapped[str]
    channel: Mapped[str]
    recipient: Mapped[str]
    subject: Mapped[str]
    body: Mapped[str]
    payload: Mapped[dict[str, Any]]
    status: Mapped[str]
    attempts: Mapped[int]
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None]


class ReviewCycle(SecondBase):
    __table__ = more_tables.REVIEW_CYCLES
    id: Mapped[int]
    period: Mapped[str]
    segments: Mapped[list[Any]]
    owner: Mapped[str]
    approver: Mapped[str | None]
    state: Mapped[str]
    as_of: Mapped[datetime]
    model_id: Mapped[int | None]
    ruleset_id: Mapped[int | None]
    account_ids: Mapped[list[Any]]
    sealed: Mapped[dict[str, Any] | None]
    digest: Mapped[str | None]
    created_at: Mapped[datetime]
    version_id: Mapped[int]
    __mapper_args__ = {"version_id_col": __table__.c.version_id}


class CycleStep(SecondBase):
    __table__ = more_tables.CYCLE_STEPS
    id: Mapped[int]
    cycle_id: Mapped[int]
    step: Mapped[str]
    done_by: Mapped[str]
    done_at: Mapped[datetime]
    note: Mapped[str | None]
    evidence: Mapped[list[Any]]
    result: Mapped[dict[str, Any]]


class CycleFinding(SecondBase):
    __table__ = more_tables.CYCLE_FINDINGS
    id: Mapped[int]
    cycle_id: Mapped[int]
    kind: Mapped[str]
    detail: Mapped[str]
    corrective_action: Mapped[str | None]
    owner: Mapped[str | None]
    due: Mapped[date | None]
    status: Mapped[str]
    close_note: Mapped[str | None]
    carried_from: Mapped[int | None]


class CycleDecision(SecondBase):
    __table__ = more_tables.CYCLE_DECISIONS
    id: Mapped[int]
    cycle_id: Mapped[int]
    account_id: Mapped[int]
    decision: Mapped[str]
    owner: Mapped[str]
    reason: Mapped[str | None]
    decided_at: Mapped[datetime]


class CycleEvent(SecondBase):
    __table__ = more_tables.CYCLE_EVENTS
    id: Mapped[int]
    cycle_id: Mapped[int]
    event: Mapped[str]
    from_state: Mapped[str | None]
    to_state: Mapped[str]
    actor: Mapped[str]
    comment: Mapped[str | None]
    at: Mapped[datetime]


class UserKey(SecondBase):
    """An SSH public key a user signs their sign-offs with; a revoked key still verifies what it signed before."""

    __table__ = more_tables.USER_KEYS
    id: Mapped[int]
    user_id: Mapped[int]
    fingerprint: Mapped[str]
    public_key: Mapped[str]
    added_by: Mapped[str]
    added_at: Mapped[datetime]
    revoked_by: Mapped[str | None]
    revoked_at: Mapped[datetime | None]


class ApiToken(SecondBase):
    """A personal access token for the JSON API: only the SHA-256 of its secret is kept; read or write scope."""

    __table__ = more_tables.API_TOKENS
    id: Mapped[int]
    user_id: Mapped[int]
    name: Mapped[str]
    scope: Mapped[str]
    token_hash: Mapped[str]
    created_by: Mapped[str]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None]
    revoked_at: Mapped[datetime | None]


class WebPassword(SecondBase):
    """A user's web sign-in password, as an argon2 hash (`pulsecheck users password`, or a set-password link)."""

    __table__ = more_tables.WEB_PASSWORDS
    user_id: Mapped[int]
    hash: Mapped[str]
    set_at: Mapped[datetime]


class WebInvite(SecondBase):
    """A one-time set-password link an admin made: only the SHA-256 of its token is stored."""

    __table__ = more_tables.WEB_INVITES
    id: Mapped[int]
    user_id: Mapped[int]
    token_hash: Mapped[str]
    created_by: Mapped[str]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class WebSigninFailure(SecondBase):
    """One failed sign-in, counted per user name and per address (`user:NAME`, `addr:IP`) by every worker."""

    __table__ = more_tables.WEB_SIGNIN_FAILURES
    id: Mapped[int]
    subject: Mapped[str]
    at: Mapped[datetime]


class WebSecret(SecondBase):
    """A secret of the web server generated once (the cookie-signing key), shared by all its workers."""

    __table__ = more_tables.WEB_SECRETS
    name: Mapped[str]
    value: Mapped[str]


class ServerKey(SecondBase):
    """The web server's SSH key (`[web] signing_key`): it countersigns sign-offs made on the web."""

    __table__ = more_tables.SERVER_KEYS
    id: Mapped[int]
    fingerprint: Mapped[str]
    public_key: Mapped[str]
    added_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class SchedulerLeader(SecondBase):
    """The scheduler's leadership, one row: the holder, its lease, and the epoch (fencing token) that each
    takeover increments. A job's transaction commits only while the epoch is still the one its leader took."""

    __table__ = more_tables.SCHEDULER_LEADER
    id: Mapped[int]
    epoch: Mapped[int]
    holder: Mapped[str | None]
    lease_until: Mapped[datetime | None]
    acquired_at: Mapped[datetime | None]
