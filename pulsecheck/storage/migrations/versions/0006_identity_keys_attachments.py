"""identity, keys, attachments, sealed archives

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Users map to an authenticated login; users register SSH public keys to sign with; attachments are stored in the
database, content-addressed; audit chain entries say who authenticated; a sealed cycle stores what it was
approved on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pulsecheck.storage.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("login", sa.String(length=100), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_users_login"), ["login"])
    with op.batch_alter_table("audit_chain", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor", sa.String(length=200), nullable=True))
    with op.batch_alter_table("review_cycles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed", sa.JSON(), nullable=True))
    op.create_table(
        "user_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=100), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("added_by", sa.String(length=100), nullable=False),
        sa.Column("added_at", pulsecheck.storage.types.UTCDateTime(), nullable=False),
        sa.Column("revoked_by", sa.String(length=100), nullable=True),
        sa.Column("revoked_at", pulsecheck.storage.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_keys_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_keys")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_user_keys_fingerprint")),
    )
    op.create_index(op.f("ix_user_keys_user_id"), "user_keys", ["user_id"], unique=False)
    op.create_table(
        "attachments",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("stored_at", pulsecheck.storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_attachments")),
    )
    op.create_table(
        "attachment_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_kind", sa.String(length=30), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("added_by", sa.String(length=100), nullable=False),
        sa.Column("added_at", pulsecheck.storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"], ["attachments.sha256"], name=op.f("fk_attachment_links_sha256_attachments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachment_links")),
        sa.UniqueConstraint("record_kind", "record_id", "number", name="uq_attachment_links_record_number"),
    )
    op.create_index("ix_attachment_links_record", "attachment_links", ["record_kind", "record_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_attachment_links_record", table_name="attachment_links")
    op.drop_table("attachment_links")
    op.drop_table("attachments")
    op.drop_index(op.f("ix_user_keys_user_id"), table_name="user_keys")
    op.drop_table("user_keys")
    with op.batch_alter_table("review_cycles", schema=None) as batch_op:
        batch_op.drop_column("sealed")
    with op.batch_alter_table("audit_chain", schema=None) as batch_op:
        batch_op.drop_column("actor")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_login"), type_="unique")
        batch_op.drop_column("login")
