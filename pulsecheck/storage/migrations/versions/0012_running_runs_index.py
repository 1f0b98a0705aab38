"""an index on evaluation_runs.status

Revision ID: 0012
Revises: 0007
Create Date: 2026-11-29

Every command asks whether any run is `running` (a run left so by a dead process is marked failed by the next
command): with this index that is one index probe however many runs the table holds.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_evaluation_runs_status", "evaluation_runs", ["status"])


def downgrade() -> None:
    op.drop_index("ix_evaluation_runs_status", table_name="evaluation_runs")
