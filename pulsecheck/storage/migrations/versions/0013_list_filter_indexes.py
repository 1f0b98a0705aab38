"""indexes for lists by person and the inbox

Revision ID: 0013
Revises: 0007
Create Date: 2026-11-29

`--owner`, `--mine` and the inbox look rows up by the person they wait for (an account's owner, a review's
reviewer or approver, an escalation's or action's or finding's owner): at 100k rows an index answers in
milliseconds what a scan of the table answers in tens of them.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_accounts_owner_id", "accounts", ["owner_id"]),
    ("ix_reviews_reviewer_state", "reviews", ["reviewer", "state"]),
    ("ix_reviews_approver_state", "reviews", ["approver", "state"]),
    ("ix_escalations_owner_status", "escalations", ["owner", "status"]),
    # `escalations list` (most urgent first) pages by walking this index instead of sorting every row
    ("ix_escalations_priority_opened_at", "escalations", ["priority", "opened_at"]),
    ("ix_mitigation_actions_owner_due_date", "mitigation_actions", ["owner", "due_date"]),
    ("ix_cycle_findings_owner_status", "cycle_findings", ["owner", "status"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
