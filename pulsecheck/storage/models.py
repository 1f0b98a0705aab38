"""SQLAlchemy 2 typed models: the mapped classes of the data model (DESIGN.md section 4), each mapped onto its Core
table (`tables`, `more_tables`), which holds the columns, keys and indexes.

The classes a review's changes use are declared here, at import; the others are declared in `more_models`, on first
use (`from pulsecheck.storage.models import Escalation` works all the same: see `declare_all`). The annotations
give each attribute's type to the type checker; the table gives the column.

No `from __future__ import annotations` here: SQLAlchemy would eval every `Mapped[...]` string at import; only
forward references are quoted.
"""

import gc
import importlib
import sys
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, registry, relationship

from pulsecheck.collector import paused
from pulsecheck.storage import tables
from pulsecheck.storage.tables import role_set as role_set


class Base(DeclarativeBase):
    metadata = tables.metadata


_SECOND = registry(metadata=Base.metadata)


class SecondBase(Base):
    """The mapped classes a review transition does not use, in a registry of their own on the same metadata:
    SQLAlchemy configures a registry's mappers (attribute instrumentation, relationships) on the first use of one
    of its classes, so a command pays for configuring only the classes it uses. Most of them are not even declared
    before their first use (`more_models`). (Read commands use no mapped class at all: they read on Core.)"""

    __abstract__ = True
    registry = _sa_registry = _SECOND


_PLAIN = registry(metadata=Base.metadata)


class PlainBase(Base):
    """The mapped classes with no relationship of their own that a command uses without the reviews: the users,
    the scheduler's jobs and the evaluation runs. In a registry of their own, for the reason `SecondBase` gives: a
    command that writes one of these configures these three, not the nine mappers of the reviews and their
    relationships. Relationships from the first registry to `User` work across registries, as those from
    `more_models` to `Account` do."""

    __abstract__ = True
    registry = _sa_registry = _PLAIN


class User(PlainBase):
    __table__ = tables.USERS
    id: Mapped[int]
    name: Mapped[str]
    email: Mapped[str | None]
    webhook: Mapped[str | None]
    roles: Mapped[str]
    manager_name: Mapped[str | None]
    created_at: Mapped[datetime]
    login: Mapped[str | None]
    chat_handle: Mapped[str | None]
    digest: Mapped[str | None]

    @property
    def role_set(self) -> set[str]:
        return role_set(self.roles)


class Account(Base):
    __table__ = tables.ACCOUNTS
    id: Mapped[int]
    external_id: Mapped[str]
    name: Mapped[str]
    segment: Mapped[str | None]
    tier: Mapped[str | None]
    arr: Mapped[float | None]
    owner_id: Mapped[int | None]
    manager_id: Mapped[int | None]
    renewal_date: Mapped[date | None]
    contract_start: Mapped[date | None]
    stage: Mapped[str | None]
    owner: Mapped[User | None] = relationship(foreign_keys=[__table__.c.owner_id])
    manager: Mapped[User | None] = relationship(foreign_keys=[__table__.c.manager_id])


class ScoreSnapshot(Base):
    __table__ = tables.SCORE_SNAPSHOTS
    id: Mapped[int]
    account_id: Mapped[int]
    as_of: Mapped[datetime]
    score: Mapped[float | None]
    bucket: Mapped[str | None]
    model_id: Mapped[int]
    components: Mapped[list[Any]]
    provisional: Mapped[bool]
    groups: Mapped[dict[str, Any] | None]


class EvaluationRun(PlainBase):
    __table__ = tables.EVALUATION_RUNS
    id: Mapped[int]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    as_of: Mapped[datetime]
    ruleset_id: Mapped[int | None]
    accounts: Mapped[int]
    firings: Mapped[int]
    actions: Mapped[int]
    status: Mapped[str]
    error: Mapped[str | None]
    holder: Mapped[str | None]
    lease_until: Mapped[datetime | None]


class Review(Base):
    __table__ = tables.REVIEWS
    id: Mapped[int]
    account_id: Mapped[int]
    state: Mapped[str]
    kind: Mapped[str]
    reviewer: Mapped[str]
    approver: Mapped[str | None]
    priority: Mapped[str]
    due_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    baseline_score: Mapped[float | None]
    baseline_bucket: Mapped[str | None]
    baseline: Mapped[dict[str, Any] | None]
    account_goals: Mapped[str | None]
    goal_summary: Mapped[str | None]
    overall_assessment: Mapped[str | None]
    next_review_date: Mapped[date | None]
    employee_comments: Mapped[str | None]
    manager_comments: Mapped[str | None]
    employee_signed_at: Mapped[datetime | None]
    employee_signed_by: Mapped[str | None]
    employee_digest: Mapped[str | None]
    manager_signed_at: Mapped[datetime | None]
    manager_signed_by: Mapped[str | None]
    manager_digest: Mapped[str | None]
    reminders_sent: Mapped[int]
    version_id: Mapped[int]

    account: Mapped[Account] = relationship()
    # Risks and actions one way only: nothing reads a risk's or an action's review through a relationship (each
    # has its review_id), and every relationship costs every command's start-up its configuration (issue 17). An
    # event's review is read (the notice hook).
    risks: Mapped[list["Risk"]] = relationship(order_by="Risk.number", cascade="all, delete-orphan")
    actions: Mapped[list["MitigationAction"]] = relationship(
        order_by="MitigationAction.number", cascade="all, delete-orphan"
    )
    events: Mapped[list["ReviewEvent"]] = relationship(back_populates="review", order_by="ReviewEvent.id")

    __mapper_args__ = {"version_id_col": __table__.c.version_id}


class Risk(Base):
    __table__ = tables.RISKS
    id: Mapped[int]
    review_id: Mapped[int]
    number: Mapped[int]
    description: Mapped[str]
    evidence: Mapped[str | None]
    category: Mapped[str]
    severity: Mapped[str]
    impact: Mapped[str | None]


class MitigationAction(Base):
    __table__ = tables.MITIGATION_ACTIONS
    id: Mapped[int]
    review_id: Mapped[int]
    number: Mapped[int]
    risk_number: Mapped[int | None]
    description: Mapped[str]
    owner: Mapped[str | None]
    due_date: Mapped[date | None]
    success_criteria: Mapped[str | None]
    status: Mapped[str]


class ReviewEvent(Base):
    __table__ = tables.REVIEW_EVENTS
    id: Mapped[int]
    review_id: Mapped[int]
    event: Mapped[str]
    from_state: Mapped[str | None]
    to_state: Mapped[str]
    actor: Mapped[str]
    comment: Mapped[str | None]
    at: Mapped[datetime]
    cause: Mapped[str]
    review: Mapped[Review] = relationship(back_populates="events")


# Declared here, not in `more_models`, though few read commands use it: attachment_links points to it (a flush
# resolves that foreign key: see `SCORING_MODELS`), and `review show` reads it for a review with attachments (their
# stored bytes are checked).
class Attachment(SecondBase):
    """A file stored in the database, content-addressed: the same bytes are stored once."""

    __table__ = tables.ATTACHMENTS
    sha256: Mapped[str]
    size: Mapped[int]
    content: Mapped[bytes]
    stored_at: Mapped[datetime]


class AttachmentLink(Base):
    """An attachment on a record (a review, a cycle step): its name there, a note, who added it and when."""

    __table__ = tables.ATTACHMENT_LINKS
    id: Mapped[int]
    record_kind: Mapped[str]
    record_id: Mapped[int]
    number: Mapped[int]
    sha256: Mapped[str]
    filename: Mapped[str]
    note: Mapped[str | None]
    added_by: Mapped[str]
    added_at: Mapped[datetime]


class AuditEntry(Base):
    """One link of the audit chain (`pulsecheck.storage.chain`): append-only."""

    __table__ = tables.AUDIT_CHAIN
    seq: Mapped[int]
    kind: Mapped[str]
    record_id: Mapped[int]
    content: Mapped[str]
    prev_hash: Mapped[str]
    hash: Mapped[str]
    actor: Mapped[str | None]
    signature: Mapped[str | None]
    signer_key: Mapped[str | None]


class SchedulerJob(PlainBase):
    """APScheduler's SQLAlchemy job store table, created by our migrations so that commands can add, move and
    remove jobs in their own transaction (same columns as `apscheduler.jobstores.sqlalchemy`)."""

    __table__ = tables.APSCHEDULER_JOBS
    id: Mapped[str]
    next_run_time: Mapped[float | None]
    job_state: Mapped[bytes]
    spec: Mapped[str | None]


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
