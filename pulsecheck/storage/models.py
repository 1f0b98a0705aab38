"""SQLAlchemy 2 typed models: the data model of DESIGN.md section 4.

The classes read commands use are declared here, at import; the others are declared in `more_models`, on first use
(`from pulsecheck.storage.models import Escalation` works all the same: see `declare_all`). What needs every table
(creating the schema, Alembic, comparing the models with the migrations) calls `declare_all()` first.

No `from __future__ import annotations` here: SQLAlchemy would eval every `Mapped[...]` string at import, a
quarter of what the models cost every command's start-up; only forward references are quoted.
"""

import gc
import importlib
import sys
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry, relationship

from pulsecheck.collector import paused
from pulsecheck.storage.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


_SECOND = registry(metadata=Base.metadata, type_annotation_map=Base.type_annotation_map)


class SecondBase(Base):
    """The mapped classes no read command uses (`review show`, `review list`, `scheduler jobs`), in a registry of
    their own on the same metadata: SQLAlchemy configures a registry's mappers (attribute instrumentation,
    relationships) on the first use of one of its classes, so a read pays for configuring only the classes it reads.
    Most of them are not even declared before their first use (`more_models`); `Attachment` is, because a table
    read commands use points to it with a foreign key and `review show` may read it."""

    __abstract__ = True
    registry = _sa_registry = _SECOND


_PLAIN = registry(metadata=Base.metadata, type_annotation_map=Base.type_annotation_map)


class PlainBase(Base):
    """The mapped classes with no relationship of their own that a command reads without the reviews: the users
    (every command authenticates), the scheduler's jobs and the evaluation runs. In a registry of their own, for the
    reason `SecondBase` gives: `scheduler jobs` configures these three, not the nine mappers of the reviews and
    their relationships (a twentieth of its start-up). Relationships from the first registry to `User` work across
    registries, as those from `more_models` to `Account` do."""

    __abstract__ = True
    registry = _sa_registry = _PLAIN


def role_set(roles: str) -> set[str]:
    """The roles of a user's stored `roles` column (comma-separated)."""
    return {r for r in roles.split(",") if r}


class User(PlainBase):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    email: Mapped[str | None] = mapped_column(String(200))
    webhook: Mapped[str | None] = mapped_column(String(300))
    roles: Mapped[str] = mapped_column(String(200))  # comma-separated: reviewer,manager,ops,admin
    manager_name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]
    # The OS login (SQLite) or database role (PostgreSQL) this user authenticates as; NULL: the same as `name`.
    login: Mapped[str | None] = mapped_column(String(100), unique=True)
    # Not in the audit chain: adding a field there would change the hash of every user entry already chained.
    chat_handle: Mapped[str | None] = mapped_column(String(100))  # webhook messages mention <@handle>
    digest: Mapped[str | None] = mapped_column(String(20))  # "daily": non-critical messages in one daily digest

    @property
    def role_set(self) -> set[str]:
        return role_set(self.roles)


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    segment: Mapped[str | None] = mapped_column(String(100), index=True)
    tier: Mapped[str | None] = mapped_column(String(50))
    arr: Mapped[float | None] = mapped_column(Float)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    renewal_date: Mapped[date | None] = mapped_column(Date)
    contract_start: Mapped[date | None] = mapped_column(Date)
    stage: Mapped[str | None] = mapped_column(String(50))
    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    manager: Mapped[User | None] = relationship(foreign_keys=[manager_id])


# Two tables that tables here point to (score_snapshots, evaluation_runs), whose classes no read command uses: the
# tables are here, as plain tables, because SQLAlchemy resolves a foreign key when it flushes the row that holds it
# (a table it names must be in the metadata whatever the command loaded); their classes (`ScoringModelVersion`,
# `Ruleset`) are mapped onto them in `more_models`, on first use. Declaring a class costs a command's start-up four
# times what its table does.
SCORING_MODELS = Table(
    "scoring_models",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("version", String(50), nullable=False),
    Column("content", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("status", String(20), nullable=False),  # draft | approved | retired
    Column("approved_by", String(100)),
    Column("approved_at", UTCDateTime()),
)
RULESETS = Table(
    "rulesets",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("content", Text, nullable=False),
    Column("activated_by", String(100), nullable=False),
    Column("activated_at", UTCDateTime(), nullable=False),
    Column("active", Boolean, nullable=False, default=False),
)


class ScoreSnapshot(Base):
    __tablename__ = "score_snapshots"
    __table_args__ = (
        UniqueConstraint("account_id", "as_of", name="uq_score_snapshots_account_as_of"),
        # the latest snapshot per account with its bucket and score, from the index alone (the live portfolio)
        Index("ix_score_snapshots_latest", "account_id", "as_of", "bucket", "score"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    as_of: Mapped[datetime] = mapped_column(index=True)
    score: Mapped[float | None] = mapped_column(Float)
    bucket: Mapped[str | None] = mapped_column(String(50))
    model_id: Mapped[int] = mapped_column(ForeignKey("scoring_models.id"))
    components: Mapped[list[Any]]
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    groups: Mapped[dict[str, Any] | None]  # group name -> subscore (0-100) or null; NULL: a flat model


class EvaluationRun(PlainBase):
    __tablename__ = "evaluation_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    as_of: Mapped[datetime]
    ruleset_id: Mapped[int | None] = mapped_column(ForeignKey("rulesets.id"))
    accounts: Mapped[int] = mapped_column(Integer, default=0)
    firings: Mapped[int] = mapped_column(Integer, default=0)
    actions: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), index=True)  # running | done | failed
    error: Mapped[str | None] = mapped_column(Text)
    # Who runs it ("<pid>@<host>#<token>", see workflow.leases) and until when its heartbeat vouches for it: a
    # `running` run whose holder is gone is marked failed by the next command that looks.
    holder: Mapped[str | None] = mapped_column(String(300))
    lease_until: Mapped[datetime | None]


OPEN_REVIEW = text("state != 'closed'")


class Review(Base):
    __tablename__ = "reviews"
    # One review per account that is not closed yet: two commands racing to open one cannot both win. Migration
    # 0004 makes the same partial index on PostgreSQL; a `postgresql_where` here would import the PostgreSQL
    # dialect (and its asyncpg driver module) into every SQLite command, only to check the keyword's name.
    __table_args__ = (
        Index("uq_reviews_open_account", "account_id", unique=True, sqlite_where=OPEN_REVIEW),
        Index("ix_reviews_reviewer_state", "reviewer", "state"),
        Index("ix_reviews_approver_state", "approver", "state"),
        # the live portfolio's overdue reviews, most overdue first (migration 0023; partial there and here)
        Index("ix_reviews_open_due", "due_at", "id", sqlite_where=text("state IN ('draft', 'submitted')")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="manual")  # manual | cadence | rule (old: out_of_cycle)
    reviewer: Mapped[str] = mapped_column(String(100))
    approver: Mapped[str | None] = mapped_column(String(100))
    priority: Mapped[str] = mapped_column(String(5), default="P3")
    due_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]  # touched by every change, so that child edits bump version_id too
    baseline_score: Mapped[float | None] = mapped_column(Float)
    baseline_bucket: Mapped[str | None] = mapped_column(String(50))
    baseline: Mapped[dict[str, Any] | None]  # the scorecard it was opened on (scorecards.snapshot_card); NULL: none
    account_goals: Mapped[str | None] = mapped_column(Text)
    goal_summary: Mapped[str | None] = mapped_column(Text)
    overall_assessment: Mapped[str | None] = mapped_column(Text)
    next_review_date: Mapped[date | None] = mapped_column(Date)
    employee_comments: Mapped[str | None] = mapped_column(Text)
    manager_comments: Mapped[str | None] = mapped_column(Text)
    employee_signed_at: Mapped[datetime | None]
    employee_signed_by: Mapped[str | None] = mapped_column(String(100))
    employee_digest: Mapped[str | None] = mapped_column(String(64))
    manager_signed_at: Mapped[datetime | None]
    manager_signed_by: Mapped[str | None] = mapped_column(String(100))
    manager_digest: Mapped[str | None] = mapped_column(String(64))
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    version_id: Mapped[int] = mapped_column(Integer, nullable=False)

    account: Mapped[Account] = relationship()
    # Risks and actions one way only: nothing reads a risk's or an action's review through a relationship (each
    # has its review_id), and every relationship costs every command's start-up its configuration (issue 17). An
    # event's review is read (the notice hook).
    risks: Mapped[list["Risk"]] = relationship(order_by="Risk.number", cascade="all, delete-orphan")
    actions: Mapped[list["MitigationAction"]] = relationship(
        order_by="MitigationAction.number", cascade="all, delete-orphan"
    )
    events: Mapped[list["ReviewEvent"]] = relationship(back_populates="review", order_by="ReviewEvent.id")

    __mapper_args__ = {"version_id_col": version_id}


class Risk(Base):
    __tablename__ = "risks"
    __table_args__ = (UniqueConstraint("review_id", "number", name="uq_risks_review_number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id"))
    number: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(20), default="customer")  # customer | internal
    severity: Mapped[str] = mapped_column(String(20), default="medium")
    impact: Mapped[str | None] = mapped_column(Text)


class MitigationAction(Base):
    __tablename__ = "mitigation_actions"
    __table_args__ = (
        UniqueConstraint("review_id", "number", name="uq_mitigation_actions_review_number"),
        Index("ix_mitigation_actions_owner_due_date", "owner", "due_date"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id"))
    number: Mapped[int] = mapped_column(Integer)
    risk_number: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(100))
    due_date: Mapped[date | None] = mapped_column(Date)
    success_criteria: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | in_progress | done | dropped


class ReviewEvent(Base):
    __tablename__ = "review_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id"), index=True)
    event: Mapped[str] = mapped_column(String(30))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(100))
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]
    cause: Mapped[str] = mapped_column(String(120), default="user")  # user | rule:<id> | scheduler
    review: Mapped[Review] = relationship(back_populates="events")


# Declared here, not in `more_models`, though few read commands use it: attachment_links points to it (a flush
# resolves that foreign key: see `SCORING_MODELS`), and `review show` reads it for a review with attachments (their
# stored bytes are checked).
class Attachment(SecondBase):
    """A file stored in the database, content-addressed: the same bytes are stored once."""

    __tablename__ = "attachments"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    stored_at: Mapped[datetime]


class AttachmentLink(Base):
    """An attachment on a record (a review, a cycle step): its name there, a note, who added it and when."""

    __tablename__ = "attachment_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    record_kind: Mapped[str] = mapped_column(String(30))  # review | cycle_step
    record_id: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per record
    sha256: Mapped[str] = mapped_column(ForeignKey("attachments.sha256"))
    filename: Mapped[str] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)
    added_by: Mapped[str] = mapped_column(String(100))
    added_at: Mapped[datetime]
    __table_args__ = (
        UniqueConstraint("record_kind", "record_id", "number", name="uq_attachment_links_record_number"),
        Index("ix_attachment_links_record", "record_kind", "record_id"),
    )


class AuditEntry(Base):
    """One link of the audit chain (`pulsecheck.storage.chain`): append-only."""

    __tablename__ = "audit_chain"
    __table_args__ = (Index("ix_audit_chain_kind_record", "kind", "record_id"),)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(30))
    record_id: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # Who authenticated for the change (e.g. "root as bob", "web:maria"): hashed with the entry, not a row field.
    actor: Mapped[str | None] = mapped_column(String(200))
    signature: Mapped[str | None] = mapped_column(Text)  # an SSH signature of the entry's statement, if signed
    signer_key: Mapped[str | None] = mapped_column(String(100))  # the signing key's fingerprint


class SchedulerJob(PlainBase):
    """APScheduler's SQLAlchemy job store table, created by our migrations so that commands can add, move and
    remove jobs in their own transaction (same columns as `apscheduler.jobstores.sqlalchemy`)."""

    __tablename__ = "apscheduler_jobs"
    id: Mapped[str] = mapped_column(Unicode(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25), index=True)
    job_state: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    # Ours, not APScheduler's (which leaves it alone): what the job was made from, so that reconcile can
    # compare 100k jobs with the rows without unpickling them.
    spec: Mapped[str | None] = mapped_column(Text)


# --- the classes declared on first use (`more_models`) -------------------------------------------------------------

MORE_MODELS = "pulsecheck.storage.more_models"
# The classes `more_models` declares, which this module gives on first access (PEP 562 `__getattr__` below).
MORE = frozenset(
    (
        "AccountFinancials",
        "ApiToken",
        "BookChange",
        "BookChangesPruned",
        "Cashflow",
        "CycleDecision",
        "CycleEvent",
        "CycleFinding",
        "CycleStep",
        "Deviation",
        "Escalation",
        "EscalationEvent",
        "EvaluationShard",
        "Issue",
        "KpiReading",
        "LatestSnapshot",
        "Notification",
        "ReviewCycle",
        "RuleFiring",
        "SchedulerLeader",
        "Ruleset",
        "Scorecard",
        "ScoringModelVersion",
        "ServerKey",
        "SurveyResponse",
        "UserKey",
        "WebInvite",
        "WebPassword",
        "WebSecret",
        "WebSigninFailure",
    )
)


def declare_all() -> MetaData:
    """Declare the classes of `more_models` too, if not yet, and return the metadata, now holding every table: what
    needs the whole schema calls it first (creating it, Alembic's environment, comparing with the migrations)."""
    more = sys.modules.get(MORE_MODELS)
    if more is None:
        # By name: `more_models` builds on this module, and this one only loads it (as `cli` loads its commands).
        # As at start-up (`pulsecheck.collector`): the collector paused while the classes are declared, and what is
        # alive then frozen, else its later passes walk these long-lived objects again and again (1 % of a
        # `review submit`, which declares them at its commit).
        with paused():
            more = importlib.import_module(MORE_MODELS)
            gc.freeze()
    globals().update((name, getattr(more, name)) for name in MORE)
    return Base.metadata


_DECLARED: dict[tuple[str, ...], tuple[type[Any], ...]] = {}  # `declared`'s answers once `more_models` is loaded


def declared(*names: str) -> tuple[type[Any], ...]:
    """The classes `names` of `more_models` if they are declared already, else none, declaring nothing: code that
    looks for objects of them among a session's (a commit hook) need not declare them, as none can exist before."""
    found = _DECLARED.get(names)
    if found is None:
        more = sys.modules.get(MORE_MODELS)
        if more is None:
            return ()
        found = _DECLARED[names] = tuple(getattr(more, name) for name in names)
    return found


if TYPE_CHECKING:
    from pulsecheck.storage.more_models import (  # noqa: I001 - one block: isort splits `as` re-exports apart
        AccountFinancials as AccountFinancials,
        ApiToken as ApiToken,
        BookChange as BookChange,
        BookChangesPruned as BookChangesPruned,
        Cashflow as Cashflow,
        CycleDecision as CycleDecision,
        CycleEvent as CycleEvent,
        CycleFinding as CycleFinding,
        CycleStep as CycleStep,
        Deviation as Deviation,
        Escalation as Escalation,
        EscalationEvent as EscalationEvent,
        EvaluationShard as EvaluationShard,
        Issue as Issue,
        KpiReading as KpiReading,
        LatestSnapshot as LatestSnapshot,
        Notification as Notification,
        ReviewCycle as ReviewCycle,
        RuleFiring as RuleFiring,
        Ruleset as Ruleset,
        SchedulerLeader as SchedulerLeader,
        Scorecard as Scorecard,
        ScoringModelVersion as ScoringModelVersion,
        ServerKey as ServerKey,
        SurveyResponse as SurveyResponse,
        UserKey as UserKey,
        WebInvite as WebInvite,
        WebPassword as WebPassword,
        WebSecret as WebSecret,
        WebSigninFailure as WebSigninFailure,
    )
else:

    def __getattr__(name: str) -> Any:
        """A class of `more_models`, declared now if it was not yet."""
        if name in MORE:
            declare_all()
            return globals()[name]
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
