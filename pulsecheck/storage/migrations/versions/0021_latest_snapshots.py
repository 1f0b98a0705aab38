"""latest snapshots: each account's newest score snapshot, kept by triggers

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30

The live portfolio (`/portfolio`) joins every account with its newest snapshot on each request; finding it among
all snapshots (DISTINCT ON over six a account) was half of that query. `latest_snapshots` holds it, one row per
scored account, and triggers on `score_snapshots` keep it whoever writes: an insert moves an account's row to a
newer snapshot; an update or delete reads the newest of the accounts it touched again. PostgreSQL runs one
statement-level trigger per statement (transition tables: a bulk COPY costs one pass), SQLite row triggers.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pulsecheck.storage.types

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

# An update or a delete: the accounts it touched (`{ids}`) read their newest snapshot again.
PG_AGAIN = """
        DELETE FROM latest_snapshots WHERE account_id IN ({ids});
        INSERT INTO latest_snapshots AS kept (account_id, as_of, score, bucket)
        SELECT DISTINCT ON (s.account_id) s.account_id, s.as_of, s.score, s.bucket FROM score_snapshots s
        WHERE s.account_id IN ({ids})
        ORDER BY s.account_id, s.as_of DESC
        ON CONFLICT (account_id) DO UPDATE SET as_of = EXCLUDED.as_of, score = EXCLUDED.score,
            bucket = EXCLUDED.bucket;"""
PG_FUNCTION = """
CREATE FUNCTION latest_snapshots_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO latest_snapshots AS kept (account_id, as_of, score, bucket)
        SELECT DISTINCT ON (account_id) account_id, as_of, score, bucket FROM new_rows
        ORDER BY account_id, as_of DESC
        ON CONFLICT (account_id) DO UPDATE SET as_of = EXCLUDED.as_of, score = EXCLUDED.score,
            bucket = EXCLUDED.bucket
        WHERE kept.as_of <= EXCLUDED.as_of;
    ELSIF TG_OP = 'UPDATE' THEN""" + PG_AGAIN.format(
    ids="SELECT account_id FROM old_rows UNION SELECT account_id FROM new_rows"
) + """
    ELSE""" + PG_AGAIN.format(ids="SELECT account_id FROM old_rows") + """
    END IF;
    RETURN NULL;
END
$$
"""
PG_TRIGGERS = (
    "CREATE TRIGGER latest_snapshots_insert AFTER INSERT ON score_snapshots REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION latest_snapshots_keep()",
    "CREATE TRIGGER latest_snapshots_update AFTER UPDATE ON score_snapshots REFERENCING OLD TABLE AS old_rows "
    "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION latest_snapshots_keep()",
    "CREATE TRIGGER latest_snapshots_delete AFTER DELETE ON score_snapshots REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION latest_snapshots_keep()",
)
# SQLite: row triggers; the newest of an account read again after an update or delete
SQLITE_NEWEST = (
    "INSERT INTO latest_snapshots (account_id, as_of, score, bucket) "
    "SELECT s.account_id, s.as_of, s.score, s.bucket FROM score_snapshots s WHERE s.account_id IN ({ids}) "
    "AND s.as_of = (SELECT max(m.as_of) FROM score_snapshots m WHERE m.account_id = s.account_id);"
)
SQLITE_TRIGGERS = (
    "CREATE TRIGGER latest_snapshots_insert AFTER INSERT ON score_snapshots BEGIN "
    "INSERT INTO latest_snapshots (account_id, as_of, score, bucket) "
    "VALUES (NEW.account_id, NEW.as_of, NEW.score, NEW.bucket) "
    "ON CONFLICT (account_id) DO UPDATE SET as_of = excluded.as_of, score = excluded.score, bucket = excluded.bucket "
    "WHERE latest_snapshots.as_of <= excluded.as_of; END",
    "CREATE TRIGGER latest_snapshots_update AFTER UPDATE ON score_snapshots BEGIN "
    "DELETE FROM latest_snapshots WHERE account_id IN (OLD.account_id, NEW.account_id); "
    + SQLITE_NEWEST.format(ids="OLD.account_id, NEW.account_id") + " END",
    "CREATE TRIGGER latest_snapshots_delete AFTER DELETE ON score_snapshots BEGIN "
    "DELETE FROM latest_snapshots WHERE account_id = OLD.account_id; "
    + SQLITE_NEWEST.format(ids="OLD.account_id") + " END",
)


def upgrade() -> None:
    op.create_table(
        "latest_snapshots",
        sa.Column("account_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("as_of", pulsecheck.storage.types.UTCDateTime(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("bucket", sa.String(length=50), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_latest_snapshots_account_id_accounts")),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_latest_snapshots")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "INSERT INTO latest_snapshots (account_id, as_of, score, bucket) "
            "SELECT DISTINCT ON (account_id) account_id, as_of, score, bucket FROM score_snapshots "
            "ORDER BY account_id, as_of DESC"
        )
        op.execute(PG_FUNCTION)
        for statement in PG_TRIGGERS:
            op.execute(statement)
    else:
        op.execute(
            "INSERT INTO latest_snapshots (account_id, as_of, score, bucket) "
            "SELECT s.account_id, s.as_of, s.score, s.bucket FROM score_snapshots s "
            "WHERE s.as_of = (SELECT max(m.as_of) FROM score_snapshots m WHERE m.account_id = s.account_id)"
        )
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    for name in ("latest_snapshots_insert", "latest_snapshots_update", "latest_snapshots_delete"):
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON score_snapshots")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS latest_snapshots_keep()")
    op.drop_table("latest_snapshots")
