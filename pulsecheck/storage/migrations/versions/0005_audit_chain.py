"""audit chain

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

One append-only hash chain over every audited change. Records that exist already join it here, in a fixed
order, so that a database upgraded from an earlier version verifies.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_chain",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.Column("signer_key", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_chain")),
    )
    op.create_index("ix_audit_chain_kind_record", "audit_chain", ["kind", "record_id"], unique=False)
    from sqlalchemy.orm import Session

    from pulsecheck.storage.chain import backfill

    backfill(Session(bind=op.get_bind()))


def downgrade() -> None:
    op.drop_index("ix_audit_chain_kind_record", table_name="audit_chain")
    op.drop_table("audit_chain")
