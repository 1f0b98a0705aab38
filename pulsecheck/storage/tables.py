"""The schema's core: the tables read commands use, as SQLAlchemy Core `Table`s (the data model of DESIGN.md
section 4; the other tables are in `more_tables`, on the same `metadata`).

The tables are Core, not declared by the mapped classes, so that a read command can query them without importing
SQLAlchemy's ORM, which alone costs as much as the command may cost above its floor (issue 17). The mapped classes
(`models`, `more_models`) are mapped onto these tables (`__table__`) for the commands that write.

Every table a table here points to with a foreign key is here too: a flush resolves the foreign keys of the rows it
writes, so a table they name must be in the metadata whatever the command loaded.
"""

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

from pulsecheck.storage.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

OPEN_REVIEW = text("state != 'closed'")


def role_set(roles: str) -> set[str]:
    """The roles of a user's stored `roles` column (comma-separated)."""
    return {r for r in roles.split(",") if r}


USERS = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("email", String(200)),
    Column("webhook", String(300)),
    Column("roles", String(200), nullable=False),  # comma-separated: reviewer,manager,ops,admin
    Column("manager_name", String(100)),
    Column("created_at", UTCDateTime(), nullable=False),
    # The OS login (SQLite) or database role (PostgreSQL) this user authenticates as; NULL: the same as `name`.
    Column("login", String(100), unique=True),
    # Not in the audit chain: adding a field there would change the hash of every user entry already chained.
    Column("chat_handle", String(100)),  # webhook messages mention <@handle>
    Column("digest", String(20)),  # "daily": non-critical messages in one daily digest
)

ACCOUNTS = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("external_id", String(100), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("segment", String(100), index=True),
    Column("tier", String(50)),
    Column("arr", Float),
    Column("owner_id", Integer, ForeignKey("users.id"), index=True),
    Column("manager_id", Integer, ForeignKey("users.id")),
    Column("renewal_date", Date),
    Column("contract_start", Date),
    Column("stage", String(50)),
)

SCORING_MODELS = Table(
    "scoring_models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", String(50), nullable=False),
    Column("content", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("status", String(20), nullable=False),  # draft | approved | retired
    Column("approved_by", String(100)),
    Column("approved_at", UTCDateTime()),
    # `ScoringModel.as_data()` of the content as JSON, written at approval (migration 0024): a read takes the model
    # from it, without the YAML parser, when its digest is `sha256` (else parses `content`).
    Column("model_data", Text),
)


RULESETS = Table(
    "rulesets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("content", Text, nullable=False),
    Column("activated_by", String(100), nullable=False),
    Column("activated_at", UTCDateTime(), nullable=False),
    Column("active", Boolean, nullable=False, default=False),
)


SCORE_SNAPSHOTS = Table(
    "score_snapshots",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("as_of", UTCDateTime(), nullable=False, index=True),
    Column("score", Float),
    Column("bucket", String(50)),
    Column("model_id", Integer, ForeignKey("scoring_models.id"), nullable=False),
    Column("components", JSON, nullable=False),
    Column("provisional", Boolean, nullable=False, default=False),
    Column("groups", JSON),  # group name -> subscore (0-100) or null; NULL: a flat model
    UniqueConstraint("account_id", "as_of", name="uq_score_snapshots_account_as_of"),
    # the latest snapshot per account with its bucket and score, from the index alone (the live portfolio)
    Index("ix_score_snapshots_latest", "account_id", "as_of", "bucket", "score"),
)

EVALUATION_RUNS = Table(
    "evaluation_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("as_of", UTCDateTime(), nullable=False),
    Column("ruleset_id", Integer, ForeignKey("rulesets.id")),
    Column("accounts", Integer, nullable=False, default=0),
    Column("firings", Integer, nullable=False, default=0),
    Column("actions", Integer, nullable=False, default=0),
    Column("status", String(20), nullable=False, index=True),  # running | done | failed
    Column("error", Text),
    # Who runs it ("<pid>@<host>#<token>", see workflow.leases) and until when its heartbeat vouches for it: a
    # `running` run whose holder is gone is marked failed by the next command that looks.
    Column("holder", String(300)),
    Column("lease_until", UTCDateTime()),
)

REVIEWS = Table(
    "reviews",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("state", String(20), nullable=False, index=True),
    Column("kind", String(20), nullable=False, default="manual"),  # manual | cadence | rule (old: out_of_cycle)
    Column("reviewer", String(100), nullable=False),
    Column("approver", String(100)),
    Column("priority", String(5), nullable=False, default="P3"),
    Column("due_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column(
        "updated_at", UTCDateTime(), nullable=False
    ),  # touched by every change, so that child edits bump version_id too
    Column("baseline_score", Float),
    Column("baseline_bucket", String(50)),
    Column("baseline", JSON),  # the scorecard it was opened on (scorecards.snapshot_card); NULL: none
    Column("account_goals", Text),
    Column("goal_summary", Text),
    Column("overall_assessment", Text),
    Column("next_review_date", Date),
    Column("employee_comments", Text),
    Column("manager_comments", Text),
    Column("employee_signed_at", UTCDateTime()),
    Column("employee_signed_by", String(100)),
    Column("employee_digest", String(64)),
    Column("manager_signed_at", UTCDateTime()),
    Column("manager_signed_by", String(100)),
    Column("manager_digest", String(64)),
    Column("reminders_sent", Integer, nullable=False, default=0),
    Column("version_id", Integer, nullable=False),
    # One review per account that is not closed yet: two commands racing to open one cannot both win. Migration
    # 0004 makes the same partial index on PostgreSQL; a `postgresql_where` here would import the PostgreSQL
    # dialect (and its asyncpg driver module) into every SQLite command, only to check the keyword's name.
    Index("uq_reviews_open_account", "account_id", unique=True, sqlite_where=OPEN_REVIEW),
    Index("ix_reviews_reviewer_state", "reviewer", "state"),
    Index("ix_reviews_approver_state", "approver", "state"),
    # the live portfolio's overdue reviews, most overdue first (migration 0023; partial there and here)
    Index("ix_reviews_open_due", "due_at", "id", sqlite_where=text("state IN ('draft', 'submitted')")),
)

RISKS = Table(
    "risks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("review_id", Integer, ForeignKey("reviews.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("description", Text, nullable=False),
    Column("evidence", Text),
    Column("category", String(20), nullable=False, default="customer"),  # customer | internal
    Column("severity", String(20), nullable=False, default="medium"),
    Column("impact", Text),
    UniqueConstraint("review_id", "number", name="uq_risks_review_number"),
)

MITIGATION_ACTIONS = Table(
    "mitigation_actions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("review_id", Integer, ForeignKey("reviews.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("risk_number", Integer),
    Column("description", Text, nullable=False),
    Column("owner", String(100)),
    Column("due_date", Date),
    Column("success_criteria", Text),
    Column("status", String(20), nullable=False, default="open"),  # open | in_progress | done | dropped
    UniqueConstraint("review_id", "number", name="uq_mitigation_actions_review_number"),
    Index("ix_mitigation_actions_owner_due_date", "owner", "due_date"),
)

REVIEW_EVENTS = Table(
    "review_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("review_id", Integer, ForeignKey("reviews.id"), nullable=False, index=True),
    Column("event", String(30), nullable=False),
    Column("from_state", String(20)),
    Column("to_state", String(20), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("comment", Text),
    Column("at", UTCDateTime(), nullable=False),
    Column("cause", String(120), nullable=False, default="user"),  # user | rule:<id> | scheduler
)

ATTACHMENTS = Table(
    "attachments",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("stored_at", UTCDateTime(), nullable=False),
)

ATTACHMENT_LINKS = Table(
    "attachment_links",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("record_kind", String(30), nullable=False),  # review | cycle_step
    Column("record_id", Integer, nullable=False),
    Column("number", Integer, nullable=False),  # 1, 2, ... per record
    Column("sha256", String(64), ForeignKey("attachments.sha256"), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("note", Text),
    Column("added_by", String(100), nullable=False),
    Column("added_at", UTCDateTime(), nullable=False),
    UniqueConstraint("record_kind", "record_id", "number", name="uq_attachment_links_record_number"),
    Index("ix_attachment_links_record", "record_kind", "record_id"),
)

AUDIT_CHAIN = Table(
    "audit_chain",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(30), nullable=False),
    Column("record_id", Integer, nullable=False),
    Column("content", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # Who authenticated for the change (e.g. "root as bob", "web:maria"): hashed with the entry, not a row field.
    Column("actor", String(200)),
    Column("signature", Text),  # an SSH signature of the entry's statement, if signed
    Column("signer_key", String(100)),  # the signing key's fingerprint
    Index("ix_audit_chain_kind_record", "kind", "record_id"),
)

APSCHEDULER_JOBS = Table(
    "apscheduler_jobs",
    metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
    # Ours, not APScheduler's (which leaves it alone): what the job was made from, so that reconcile can
    # compare 100k jobs with the rows without unpickling them.
    Column("spec", Text),
)
