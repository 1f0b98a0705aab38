"""score snapshots: a covering index for the latest snapshot per account

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30

The live portfolio (`/portfolio`) reads the latest snapshot on or before a moment of every account, with its
bucket and score, on each request. An index on (account_id, as_of, bucket, score) answers that from the index
alone: on PostgreSQL one ordered index-only pass for DISTINCT ON (no sort of the wide rows, components included),
on SQLite the correlated MAX and the row it names.
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_score_snapshots_latest", "score_snapshots", ["account_id", "as_of", "bucket", "score"]
    )


def downgrade() -> None:
    op.drop_index("ix_score_snapshots_latest", table_name="score_snapshots")
