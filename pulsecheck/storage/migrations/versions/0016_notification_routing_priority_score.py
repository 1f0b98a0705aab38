"""chat handles, daily digests, priority scores

Revision ID: 0016
Revises: 0007
Create Date: 2026-11-29

A user may have a chat handle (webhook messages mention them) and ask for a daily digest instead of single
messages; an escalation keeps the priority score that orders it among others of the same priority.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chat_handle", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("digest", sa.String(length=20), nullable=True))
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority_score", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_column("priority_score")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("digest")
        batch_op.drop_column("chat_handle")
