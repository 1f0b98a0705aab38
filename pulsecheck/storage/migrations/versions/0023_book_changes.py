"""book changes: which transactions wrote the book the live portfolio shows

Revision ID: 0023
Revises: 0021
Create Date: 2026-11-30

The live portfolio (`/portfolio`) kept its figures and its at-risk book per worker only if it can tell, cheaply
and at once, that nobody changed the data since. On PostgreSQL a statement trigger on each table the book reads
(accounts, users, score and latest snapshots, escalations, issues, scoring models) inserts the writing
transaction's id into `book_changes` (once per transaction: ON CONFLICT DO NOTHING). A reader that kept figures
computed under snapshot S asks whether a committed row is not visible in S: one index range probe. Each writer
inserts its own key: no shared counter row, so writers (evaluate's parallel workers) never wait for each other,
and a transaction that commits late is still seen (a maximum id would miss it). SQLite (one web worker) keeps
nothing and has the tables only.

Also an index of the open reviews by due date: the page's overdue reviews, most overdue first, in a few index
steps instead of a hash join over every account.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

TABLES = ("accounts", "users", "score_snapshots", "latest_snapshots", "escalations", "issues", "scoring_models")
PG_FUNCTION = """
CREATE FUNCTION book_changes_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO book_changes (xid) VALUES (pg_current_xact_id()::text::bigint) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "book_changes",
        sa.Column("xid", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("xid", name=op.f("pk_book_changes")),
    )
    op.create_table(
        "book_changes_pruned",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("upto", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_book_changes_pruned")),
    )
    op.execute("INSERT INTO book_changes_pruned (id, upto) VALUES (1, 0)")
    open_review = sa.text("state IN ('draft', 'submitted')")
    op.create_index("ix_reviews_open_due", "reviews", ["due_at", "id"], sqlite_where=open_review,
                    postgresql_where=open_review)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER book_changes_{table} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION book_changes_note()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS book_changes_{table} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS book_changes_note()")
    op.drop_index("ix_reviews_open_due", table_name="reviews")
    op.drop_table("book_changes_pruned")
    op.drop_table("book_changes")
