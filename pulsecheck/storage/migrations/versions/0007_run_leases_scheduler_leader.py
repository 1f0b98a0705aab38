"""run leases and the scheduler's leader row

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

An evaluation run records who runs it and until when its heartbeat vouches for it, so that a run whose process
died is marked failed instead of staying `running`. The scheduler's leadership lives in one row that every way of
opening the database sees, with an epoch that each takeover increments: the fencing token a job's transaction
checks before it commits.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pulsecheck.storage.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evaluation_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("holder", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("lease_until", pulsecheck.storage.types.UTCDateTime(), nullable=True))
    leader = op.create_table(
        "scheduler_leader",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=300), nullable=True),
        sa.Column("lease_until", pulsecheck.storage.types.UTCDateTime(), nullable=True),
        sa.Column("acquired_at", pulsecheck.storage.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler_leader")),
    )
    op.bulk_insert(leader, [{"id": 1, "epoch": 0}])  # the one row: takeovers only ever update it


def downgrade() -> None:
    op.drop_table("scheduler_leader")
    with op.batch_alter_table("evaluation_runs", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("holder")
