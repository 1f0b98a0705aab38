"""evaluation shards

Revision ID: 0011
Revises: 0007
Create Date: 2026-11-29

A sharded evaluation run splits its accounts into shards (blocks of account ids hashed modulo the shard count),
one row each, which worker processes on any host sharing the database claim, process and mark done.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pulsecheck.storage.types

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluation_shards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("shards", sa.Integer(), nullable=False),
        sa.Column("block", sa.Integer(), nullable=False),
        sa.Column("last_account", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("holder", sa.String(length=300), nullable=True),
        sa.Column("lease_until", pulsecheck.storage.types.UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("firings", sa.Integer(), nullable=False),
        sa.Column("actions", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished_at", pulsecheck.storage.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["evaluation_runs.id"], name=op.f("fk_evaluation_shards_run_id_evaluation_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_shards")),
        sa.UniqueConstraint("run_id", "shard", name="uq_evaluation_shards_run_shard"),
    )


def downgrade() -> None:
    op.drop_table("evaluation_shards")
