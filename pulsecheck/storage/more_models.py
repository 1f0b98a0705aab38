"""The mapped classes no read command uses (`review show`, `review list`, `scheduler jobs`), declared only when a
command first asks for one: `pulsecheck.storage.models` loads this module on the first access to one of its names
(`from pulsecheck.storage.models import Escalation`), or for the whole schema (`models.declare_all`).

Declaring a class (building its Table, its columns and constraints, and its mapper) is work done at import whether
or not the command uses the class: for these 28 it was half of what importing the models cost every command's
start-up. They live in `models.SecondBase`'s registry, so a command that declares them configures them only if it
uses one. Their foreign keys name tables by string; the tables declared in `models` never point here (a flush
resolves the foreign keys of the rows it writes), but to the two tables `models` holds as plain tables
(`SCORING_MODELS`, `RULESETS`), which `ScoringModelVersion` and `Ruleset` here are mapped onto.

No `from __future__ import annotations`, as in `models`.
"""

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pulsecheck.storage.models import RULESETS, SCORING_MODELS, Account, SecondBase


class ScoringModelVersion(SecondBase):
    __table__ = SCORING_MODELS  # in `models`: tables there point to it
    id: Mapped[int]
    version: Mapped[str]
    content: Mapped[str]
    sha256: Mapped[str]
    status: Mapped[str]  # draft | approved | retired
    approved_by: Mapped[str | None]
    approved_at: Mapped[datetime | None]


class Ruleset(SecondBase):
    __table__ = RULESETS  # in `models`: tables there point to it
    id: Mapped[int]
    name: Mapped[str]
    sha256: Mapped[str]
    content: Mapped[str]
    activated_by: Mapped[str]
    activated_at: Mapped[datetime]
    active: Mapped[bool]


class KpiReading(SecondBase):
    __tablename__ = "kpi_readings"
    # The value columns too (migration 0022): scoring's newest-readings read is answered from the index alone.
    __table_args__ = (Index("ix_kpi_readings_covering", "account_id", "kpi", "observed_at", "value", "source"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kpi: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    observed_at: Mapped[datetime]
    source: Mapped[str | None] = mapped_column(String(100))
    imported_at: Mapped[datetime]


class SurveyResponse(SecondBase):
    __tablename__ = "survey_responses"
    # The value columns too (migration 0022): scoring's survey read is answered from the index alone.
    __table_args__ = (
        Index("ix_survey_responses_covering", "account_id", "kind", "responded_at", "score", "max_score"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(10))
    score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    responded_at: Mapped[datetime]
    imported_at: Mapped[datetime]


class Issue(SecondBase):
    __tablename__ = "issues"
    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    title: Mapped[str | None] = mapped_column(String(300))
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]


class LatestSnapshot(SecondBase):
    """Each account's newest score snapshot (by `as_of`), kept by database triggers on `score_snapshots`
    (migration 0021) whoever writes them: the live portfolio joins it instead of finding the newest of every
    account's snapshots on each request."""

    __tablename__ = "latest_snapshots"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True, autoincrement=False)
    as_of: Mapped[datetime]
    score: Mapped[float | None] = mapped_column(Float)
    bucket: Mapped[str | None] = mapped_column(String(50))


class BookChange(SecondBase):
    """A transaction that wrote the book the live portfolio shows (accounts, users, score snapshots, escalations,
    issues, scoring models), by its transaction id: PostgreSQL triggers insert one row per such transaction
    (migration 0023), so that a worker tells in one index probe whether figures it kept are still current
    (`storage.changes`). One row per transaction and no shared counter: writers never wait for each other."""

    __tablename__ = "book_changes"
    xid: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class BookChangesPruned(SecondBase):
    """One row: the newest transaction id whose `book_changes` row was pruned (a kept figure older than that
    cannot know what the pruned rows said, and is computed again)."""

    __tablename__ = "book_changes_pruned"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    upto: Mapped[int] = mapped_column(BigInteger)


class Scorecard(SecondBase):
    """A scorecard submitted for approval: the content it was submitted with (and its digest), four-eyes."""

    __tablename__ = "scorecards"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    as_of: Mapped[datetime]
    content: Mapped[dict[str, Any]]
    digest: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20))  # submitted | approved | rejected
    submitted_by: Mapped[str] = mapped_column(String(100))
    submitted_at: Mapped[datetime]
    approver: Mapped[str | None] = mapped_column(String(100))  # the one asked: the submitter's manager by default
    approved_by: Mapped[str | None] = mapped_column(String(100))  # who decided (approved or rejected)
    decided_at: Mapped[datetime | None]
    comment: Mapped[str | None] = mapped_column(Text)
    decision_comment: Mapped[str | None] = mapped_column(Text)
    version_id: Mapped[int] = mapped_column(Integer, nullable=False)
    __mapper_args__ = {"version_id_col": version_id}  # two approvers at once: the second one conflicts


class Cashflow(SecondBase):
    """An account's net cash flow C_t of period t (0, 1, ...), for its NPV."""

    __tablename__ = "cashflows"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    period: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    amount: Mapped[float] = mapped_column(Float)


class AccountFinancials(SecondBase):
    """An account's unit economics for its LTV (monthly ARPU and cost to serve, CAC) and its NPV rate."""

    __tablename__ = "account_financials"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True, autoincrement=False)
    arpu: Mapped[float] = mapped_column(Float)
    cac: Mapped[float] = mapped_column(Float)
    cost_to_serve: Mapped[float] = mapped_column(Float)
    expected_tenure_months: Mapped[float | None] = mapped_column(Float)
    discount_rate: Mapped[float | None] = mapped_column(Float)


class Deviation(SecondBase):
    __tablename__ = "deviations"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    subject: Mapped[str] = mapped_column(String(200), default="")  # e.g. the KPI: one open row per cause
    detail: Mapped[str] = mapped_column(Text)
    found_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | accepted | resolved
    accepted_by: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    accepted_until: Mapped[date | None] = mapped_column(Date)
    resolved_at: Mapped[datetime | None]


class EvaluationShard(SecondBase):
    """One shard of a sharded run: the accounts whose block of ids (`id // block`) is `shard` modulo `shards`,
    up to `last_account`. Any worker process sharing the database claims it (`workflow.shards`)."""

    __tablename__ = "evaluation_shards"
    __table_args__ = (UniqueConstraint("run_id", "shard", name="uq_evaluation_shards_run_shard"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("evaluation_runs.id"))
    shard: Mapped[int]
    shards: Mapped[int]
    block: Mapped[int]
    last_account: Mapped[int]
    status: Mapped[str] = mapped_column(String(20))  # pending | running | done
    holder: Mapped[str | None] = mapped_column(String(300))  # as `evaluation_runs.holder` (workflow.leases)
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    accounts: Mapped[int] = mapped_column(Integer, default=0)
    firings: Mapped[int] = mapped_column(Integer, default=0)
    actions: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)  # why its last attempt failed
    finished_at: Mapped[datetime | None]


class RuleFiring(SecondBase):
    __tablename__ = "rule_firings"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("evaluation_runs.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    rule_id: Mapped[str] = mapped_column(String(100))
    facts: Mapped[dict[str, Any]]
    fired_at: Mapped[datetime]


class Escalation(SecondBase):
    __tablename__ = "escalations"
    __table_args__ = (
        Index("ix_escalations_owner_status", "owner", "status"),
        Index("ix_escalations_priority_opened_at", "priority", "opened_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    review_id: Mapped[int | None] = mapped_column(ForeignKey("reviews.id"))
    rule_id: Mapped[str] = mapped_column(String(100))
    severity: Mapped[str] = mapped_column(String(20))
    priority: Mapped[str] = mapped_column(String(5))
    # Orders escalations within a priority (rules.priority.priority_score).
    priority_score: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(100))
    level: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime | None]
    opened_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | acknowledged | resolved
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None]
    # Unique while open: "<account>:<rule>"; set to NULL on resolution so a later one can open.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    account: Mapped[Account] = relationship()


class EscalationEvent(SecondBase):
    """Who resolved an escalation on purpose, when and why (append-only; joins the audit chain)."""

    __tablename__ = "escalation_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id"), index=True)
    event: Mapped[str] = mapped_column(String(30))  # resolve
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]


class Notification(SecondBase):
    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(50))
    channel: Mapped[str] = mapped_column(String(30))
    recipient: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)  # pending|sent|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class ReviewCycle(SecondBase):
    __tablename__ = "review_cycles"
    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(20))
    segments: Mapped[list[Any]]
    owner: Mapped[str] = mapped_column(String(100))
    approver: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20))
    as_of: Mapped[datetime]
    model_id: Mapped[int | None] = mapped_column(ForeignKey("scoring_models.id"))
    ruleset_id: Mapped[int | None] = mapped_column(ForeignKey("rulesets.id"))
    account_ids: Mapped[list[Any]]
    # What the cycle was approved on (accounts with score, bucket and reason; step results; evidence digests),
    # stored at the seal so that a later re-score changes nothing the archive shows.
    sealed: Mapped[dict[str, Any] | None]
    digest: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    version_id: Mapped[int] = mapped_column(Integer, nullable=False)
    __mapper_args__ = {"version_id_col": version_id}


class CycleStep(SecondBase):
    __tablename__ = "cycle_steps"
    __table_args__ = (UniqueConstraint("cycle_id", "step", name="uq_cycle_steps_cycle_step"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("review_cycles.id"))
    step: Mapped[str] = mapped_column(String(20))
    done_by: Mapped[str] = mapped_column(String(100))
    done_at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[list[Any]]
    result: Mapped[dict[str, Any]]


class CycleFinding(SecondBase):
    __tablename__ = "cycle_findings"
    __table_args__ = (Index("ix_cycle_findings_owner_status", "owner", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("review_cycles.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text)
    corrective_action: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(100))
    due: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="open")
    close_note: Mapped[str | None] = mapped_column(Text)
    carried_from: Mapped[int | None] = mapped_column(ForeignKey("cycle_findings.id"))


class CycleDecision(SecondBase):
    __tablename__ = "cycle_decisions"
    __table_args__ = (UniqueConstraint("cycle_id", "account_id", name="uq_cycle_decisions_cycle_account"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("review_cycles.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    decision: Mapped[str] = mapped_column(String(20))  # escalate | monitor
    owner: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime]


class CycleEvent(SecondBase):
    __tablename__ = "cycle_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("review_cycles.id"), index=True)
    event: Mapped[str] = mapped_column(String(30))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(100))
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


class UserKey(SecondBase):
    """An SSH public key a user signs their sign-offs with; a revoked key still verifies what it signed before."""

    __tablename__ = "user_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    fingerprint: Mapped[str] = mapped_column(String(100), unique=True)  # SHA256:... as ssh-keygen -l prints it
    public_key: Mapped[str] = mapped_column(Text)  # one OpenSSH line: type, base64, comment
    added_by: Mapped[str] = mapped_column(String(100))
    added_at: Mapped[datetime]
    revoked_by: Mapped[str | None] = mapped_column(String(100))
    revoked_at: Mapped[datetime | None]


class ApiToken(SecondBase):
    """A personal access token for the JSON API: only the SHA-256 of its secret is kept; read or write scope."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(10))  # read | write
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(100))
    revoked_at: Mapped[datetime | None]


class WebPassword(SecondBase):
    """A user's web sign-in password, as an argon2 hash (`pulsecheck users password`, or a set-password link)."""

    __tablename__ = "web_passwords"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    hash: Mapped[str] = mapped_column(Text)
    set_at: Mapped[datetime]


class WebInvite(SecondBase):
    """A one-time set-password link an admin made: only the SHA-256 of its token is stored."""

    __tablename__ = "web_invites"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class WebSigninFailure(SecondBase):
    """One failed sign-in, counted per user name and per address (`user:NAME`, `addr:IP`) by every worker."""

    __tablename__ = "web_signin_failures"
    __table_args__ = (Index("ix_web_signin_failures_subject_at", "subject", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(300))
    at: Mapped[datetime]


class WebSecret(SecondBase):
    """A secret of the web server generated once (the cookie-signing key), shared by all its workers."""

    __tablename__ = "web_secrets"
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ServerKey(SecondBase):
    """The web server's SSH key (`[web] signing_key`): it countersigns sign-offs made on the web."""

    __tablename__ = "server_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(100), unique=True)
    public_key: Mapped[str] = mapped_column(Text)
    added_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class SchedulerLeader(SecondBase):
    """The scheduler's leadership, one row: the holder, its lease, and the epoch (fencing token) that each
    takeover increments. A job's transaction commits only while the epoch is still the one its leader took."""

    __tablename__ = "scheduler_leader"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    holder: Mapped[str | None] = mapped_column(String(300))
    lease_until: Mapped[datetime | None]
    acquired_at: Mapped[datetime | None]
