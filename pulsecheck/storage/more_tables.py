"""The rest of the schema: the tables no read command of the reviews uses, as SQLAlchemy Core `Table`s on `tables`'
metadata (see `tables`). Loaded with the classes mapped onto them (`more_models`), by a read command that queries
one of them, and for the whole schema (`models.declare_all`). Their foreign keys name tables by string; the tables of
`tables` never point here (a flush resolves the foreign keys of the rows it writes).
"""

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from pulsecheck.storage.tables import metadata
from pulsecheck.storage.types import UTCDateTime

KPI_READINGS = Table(
    "kpi_readings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("kpi", String(100), nullable=False),
    Column("value", Float, nullable=False),
    Column("observed_at", UTCDateTime(), nullable=False),
    Column("source", String(100)),
    Column("imported_at", UTCDateTime(), nullable=False),
    # The value columns too (migration 0022): scoring's newest-readings read is answered from the index alone.
    Index("ix_kpi_readings_covering", "account_id", "kpi", "observed_at", "value", "source"),
)


SURVEY_RESPONSES = Table(
    "survey_responses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("score", Float, nullable=False),
    Column("max_score", Float, nullable=False),
    Column("responded_at", UTCDateTime(), nullable=False),
    Column("imported_at", UTCDateTime(), nullable=False),
    # The value columns too (migration 0022): scoring's survey read is answered from the index alone.
    Index("ix_survey_responses_covering", "account_id", "kind", "responded_at", "score", "max_score"),
)


ISSUES = Table(
    "issues",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("external_id", String(100), nullable=False, unique=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("severity", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("title", String(300)),
    Column("opened_at", UTCDateTime(), nullable=False),
    Column("closed_at", UTCDateTime()),
)


LATEST_SNAPSHOTS = Table(
    "latest_snapshots",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), primary_key=True, autoincrement=False),
    Column("as_of", UTCDateTime(), nullable=False),
    Column("score", Float),
    Column("bucket", String(50)),
)


BOOK_CHANGES = Table(
    "book_changes",
    metadata,
    Column("xid", BigInteger, primary_key=True, autoincrement=False),
)


BOOK_CHANGES_PRUNED = Table(
    "book_changes_pruned",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("upto", BigInteger, nullable=False),
)


SCORECARDS = Table(
    "scorecards",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("as_of", UTCDateTime(), nullable=False),
    Column("content", JSON, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("state", String(20), nullable=False),  # submitted | approved | rejected
    Column("submitted_by", String(100), nullable=False),
    Column("submitted_at", UTCDateTime(), nullable=False),
    Column("approver", String(100)),  # the one asked: the submitter's manager by default
    Column("approved_by", String(100)),  # who decided (approved or rejected)
    Column("decided_at", UTCDateTime()),
    Column("comment", Text),
    Column("decision_comment", Text),
    Column("version_id", Integer, nullable=False),
)


CASHFLOWS = Table(
    "cashflows",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), primary_key=True),
    Column("period", Integer, primary_key=True, autoincrement=False),
    Column("amount", Float, nullable=False),
)


ACCOUNT_FINANCIALS = Table(
    "account_financials",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), primary_key=True, autoincrement=False),
    Column("arpu", Float, nullable=False),
    Column("cac", Float, nullable=False),
    Column("cost_to_serve", Float, nullable=False),
    Column("expected_tenure_months", Float),
    Column("discount_rate", Float),
)


DEVIATIONS = Table(
    "deviations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), index=True),
    Column("kind", String(30), nullable=False),
    Column("subject", String(200), nullable=False, default=""),  # e.g. the KPI: one open row per cause
    Column("detail", Text, nullable=False),
    Column("found_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("status", String(20), nullable=False, default="open"),  # open | accepted | resolved
    Column("accepted_by", String(100)),
    Column("reason", Text),
    Column("accepted_until", Date),
    Column("resolved_at", UTCDateTime()),
)


EVALUATION_SHARDS = Table(
    "evaluation_shards",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("evaluation_runs.id"), nullable=False),
    Column("shard", Integer, nullable=False),
    Column("shards", Integer, nullable=False),
    Column("block", Integer, nullable=False),
    Column("last_account", Integer, nullable=False),
    Column("status", String(20), nullable=False),  # pending | running | done
    Column("holder", String(300)),  # as `evaluation_runs.holder` (workflow.leases)
    Column("lease_until", UTCDateTime()),
    Column("attempts", Integer, nullable=False, default=0),
    Column("accounts", Integer, nullable=False, default=0),
    Column("firings", Integer, nullable=False, default=0),
    Column("actions", Integer, nullable=False, default=0),
    Column("error", Text),  # why its last attempt failed
    Column("finished_at", UTCDateTime()),
    UniqueConstraint("run_id", "shard", name="uq_evaluation_shards_run_shard"),
)


RULE_FIRINGS = Table(
    "rule_firings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("evaluation_runs.id"), nullable=False, index=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("rule_id", String(100), nullable=False),
    Column("facts", JSON, nullable=False),
    Column("fired_at", UTCDateTime(), nullable=False),
)


ESCALATIONS = Table(
    "escalations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("review_id", Integer, ForeignKey("reviews.id")),
    Column("rule_id", String(100), nullable=False),
    Column("severity", String(20), nullable=False),
    Column("priority", String(5), nullable=False),
    # Orders escalations within a priority (rules.priority.priority_score).
    Column("priority_score", Float),
    Column("reason", Text, nullable=False),
    Column("owner", String(100)),
    Column("level", Integer, nullable=False, default=0),
    Column("due_at", UTCDateTime()),
    Column("opened_at", UTCDateTime(), nullable=False),
    Column("status", String(20), nullable=False, default="open"),  # open | acknowledged | resolved
    Column("acknowledged_by", String(100)),
    Column("resolved_at", UTCDateTime()),
    # Unique while open: "<account>:<rule>"; set to NULL on resolution so a later one can open.
    Column("dedupe_key", String(200), unique=True),
    Index("ix_escalations_owner_status", "owner", "status"),
    Index("ix_escalations_priority_opened_at", "priority", "opened_at"),
)


ESCALATION_EVENTS = Table(
    "escalation_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("escalation_id", Integer, ForeignKey("escalations.id"), nullable=False, index=True),
    Column("event", String(30), nullable=False),  # resolve
    Column("actor", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
)


NOTIFICATIONS = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("dedupe_key", String(300), nullable=False, unique=True),
    Column("kind", String(50), nullable=False),
    Column("channel", String(30), nullable=False),
    Column("recipient", String(100), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(20), nullable=False, default="pending", index=True),  # pending|sent|failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime()),
    Column("last_error", Text),
)


REVIEW_CYCLES = Table(
    "review_cycles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("period", String(20), nullable=False),
    Column("segments", JSON, nullable=False),
    Column("owner", String(100), nullable=False),
    Column("approver", String(100)),
    Column("state", String(20), nullable=False),
    Column("as_of", UTCDateTime(), nullable=False),
    Column("model_id", Integer, ForeignKey("scoring_models.id")),
    Column("ruleset_id", Integer, ForeignKey("rulesets.id")),
    Column("account_ids", JSON, nullable=False),
    # What the cycle was approved on (accounts with score, bucket and reason; step results; evidence digests),
    # stored at the seal so that a later re-score changes nothing the archive shows.
    Column("sealed", JSON),
    Column("digest", String(64)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("version_id", Integer, nullable=False),
)


CYCLE_STEPS = Table(
    "cycle_steps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("cycle_id", Integer, ForeignKey("review_cycles.id"), nullable=False),
    Column("step", String(20), nullable=False),
    Column("done_by", String(100), nullable=False),
    Column("done_at", UTCDateTime(), nullable=False),
    Column("note", Text),
    Column("evidence", JSON, nullable=False),
    Column("result", JSON, nullable=False),
    UniqueConstraint("cycle_id", "step", name="uq_cycle_steps_cycle_step"),
)


CYCLE_FINDINGS = Table(
    "cycle_findings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("cycle_id", Integer, ForeignKey("review_cycles.id"), nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("detail", Text, nullable=False),
    Column("corrective_action", Text),
    Column("owner", String(100)),
    Column("due", Date),
    Column("status", String(20), nullable=False, default="open"),
    Column("close_note", Text),
    Column("carried_from", Integer, ForeignKey("cycle_findings.id")),
    Index("ix_cycle_findings_owner_status", "owner", "status"),
)


CYCLE_DECISIONS = Table(
    "cycle_decisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("cycle_id", Integer, ForeignKey("review_cycles.id"), nullable=False),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("decision", String(20), nullable=False),  # escalate | monitor
    Column("owner", String(100), nullable=False),
    Column("reason", Text),
    Column("decided_at", UTCDateTime(), nullable=False),
    UniqueConstraint("cycle_id", "account_id", name="uq_cycle_decisions_cycle_account"),
)


CYCLE_EVENTS = Table(
    "cycle_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("cycle_id", Integer, ForeignKey("review_cycles.id"), nullable=False, index=True),
    Column("event", String(30), nullable=False),
    Column("from_state", String(20)),
    Column("to_state", String(20), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("comment", Text),
    Column("at", UTCDateTime(), nullable=False),
)


USER_KEYS = Table(
    "user_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("fingerprint", String(100), nullable=False, unique=True),  # SHA256:... as ssh-keygen -l prints it
    Column("public_key", Text, nullable=False),  # one OpenSSH line: type, base64, comment
    Column("added_by", String(100), nullable=False),
    Column("added_at", UTCDateTime(), nullable=False),
    Column("revoked_by", String(100)),
    Column("revoked_at", UTCDateTime()),
)


API_TOKENS = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("scope", String(10), nullable=False),  # read | write
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_by", String(100), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime()),
    Column("revoked_by", String(100)),
    Column("revoked_at", UTCDateTime()),
)


WEB_PASSWORDS = Table(
    "web_passwords",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("hash", Text, nullable=False),
    Column("set_at", UTCDateTime(), nullable=False),
)


WEB_INVITES = Table(
    "web_invites",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_by", String(100), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime()),
)


WEB_SIGNIN_FAILURES = Table(
    "web_signin_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subject", String(300), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_web_signin_failures_subject_at", "subject", "at"),
)


WEB_SECRETS = Table(
    "web_secrets",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("value", Text, nullable=False),
)


SERVER_KEYS = Table(
    "server_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("fingerprint", String(100), nullable=False, unique=True),
    Column("public_key", Text, nullable=False),
    Column("added_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
)


SCHEDULER_LEADER = Table(
    "scheduler_leader",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("epoch", Integer, nullable=False, default=0),
    Column("holder", String(300)),
    Column("lease_until", UTCDateTime()),
    Column("acquired_at", UTCDateTime()),
)
