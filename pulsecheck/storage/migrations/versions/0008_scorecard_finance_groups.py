"""scorecard: cash flows, account financials, group subscores

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

The derived KPIs of the account scorecard read an account's cash flows (npv) and unit economics (ltv); each
snapshot stores the subscore of every group of the model beside its KPI components (NULL for snapshots scored
before groups existed, and for flat models).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cashflows",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_cashflows_account_id_accounts")),
        sa.PrimaryKeyConstraint("account_id", "period", name=op.f("pk_cashflows")),
    )
    op.create_table(
        "account_financials",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("arpu", sa.Float(), nullable=False),
        sa.Column("cac", sa.Float(), nullable=False),
        sa.Column("cost_to_serve", sa.Float(), nullable=False),
        sa.Column("expected_tenure_months", sa.Float(), nullable=True),
        sa.Column("discount_rate", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_account_financials_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_financials")),
    )
    with op.batch_alter_table("score_snapshots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("groups", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("score_snapshots", schema=None) as batch_op:
        batch_op.drop_column("groups")
    op.drop_table("account_financials")
    op.drop_table("cashflows")
