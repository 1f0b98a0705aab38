"""review baseline scorecard

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30

A review carries the scorecard it was opened on: `reviews.baseline` holds the account's scorecard at opening
(score, bucket, group subscores, each KPI's raw and normalized value, weight, contribution and status, areas of
concern and strengths) as written by `workflow.scorecards.snapshot_card`. NULL for reviews opened before (they
keep `baseline_score` and `baseline_bucket` only) and for accounts that had no snapshot yet. A copy, not a
reference: `score` replaces the snapshots of an as-of it scores again, so a snapshot id would not last.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.add_column(sa.Column("baseline", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.drop_column("baseline")
