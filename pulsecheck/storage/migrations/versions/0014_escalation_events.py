"""escalation events

Revision ID: 0014
Revises: 0007
Create Date: 2026-11-29

An escalation resolved on purpose, with a reason (the escalations of rules a new rules file removes, resolved by
`rules activate --resolve-orphans`), records who did it, when and why in an append-only event row that joins the
audit chain, as review and cycle events do.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pulsecheck.storage.types

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "escalation_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=30), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", pulsecheck.storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["escalation_id"], ["escalations.id"], name=op.f("fk_escalation_events_escalation_id_escalations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_events")),
    )
    with op.batch_alter_table("escalation_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_escalation_events_escalation_id"), ["escalation_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("escalation_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_escalation_events_escalation_id"))
    op.drop_table("escalation_events")
