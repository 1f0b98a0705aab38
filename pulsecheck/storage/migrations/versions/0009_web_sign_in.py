"""web sign-in: passwords, one-time set-password links, sign-in attempts, the server's secrets and keys

Revision ID: 0009
Revises: 0007
Create Date: 2026-11-29

`pulsecheck serve` signs people in with argon2 password hashes; an admin's invitation is a one-time link whose
token is stored hashed. Failed sign-in attempts are rows, so that every worker (and every host behind a proxy)
counts the same ones. The cookie-signing secret is generated once and kept in the database. A server key
countersigns web sign-offs where signatures are required.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pulsecheck.storage.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_passwords",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.Column("set_at", pulsecheck.storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_web_passwords_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_web_passwords")),
    )
    op.create_table(
        "web_invites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", pulsecheck.storage.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", pulsecheck.storage.types.UTCDateTime(), nullable=False),
        sa.Column("used_at", pulsecheck.storage.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_web_invites_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_invites")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_invites_token_hash")),
    )
    op.create_table(
        "web_signin_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("at", pulsecheck.storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_signin_failures")),
    )
    op.create_index("ix_web_signin_failures_subject_at", "web_signin_failures", ["subject", "at"])
    op.create_table(
        "web_secrets",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_web_secrets")),
    )
    op.create_table(
        "server_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=100), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("added_at", pulsecheck.storage.types.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", pulsecheck.storage.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_keys")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_server_keys_fingerprint")),
    )


def downgrade() -> None:
    op.drop_table("server_keys")
    op.drop_table("web_secrets")
    op.drop_index("ix_web_signin_failures_subject_at", table_name="web_signin_failures")
    op.drop_table("web_signin_failures")
    op.drop_table("web_invites")
    op.drop_table("web_passwords")
