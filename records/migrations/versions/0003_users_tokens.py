"""API users and their hashed bearer tokens

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 23:40:00

Self-contained: ``records rebuild`` drops only the read model's own tables and then runs every
migration again, so these tables (which Temporal cannot rebuild) are created only when absent
and kept across a rebuild.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "api_users" not in existing:
        op.create_table(
            "api_users",
            sa.Column("user_id", sa.String(length=80), nullable=False),
            sa.Column("role", sa.String(length=40), nullable=False),
            sa.Column("schools", sa.JSON(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("user_id", name=op.f("pk_api_users")),
        )
    if "api_tokens" not in existing:
        op.create_table(
            "api_tokens",
            sa.Column("token_id", sa.String(length=16), nullable=False),
            sa.Column("user_id", sa.String(length=80), nullable=True),
            sa.Column("role", sa.String(length=40), nullable=False),
            sa.Column("actor_id", sa.String(length=80), nullable=False),
            sa.Column("schools", sa.JSON(), nullable=False),
            sa.Column("secret_hash", sa.String(length=200), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("workflow_id", sa.String(length=80), nullable=True),
            sa.Column("consultation_id", sa.String(length=80), nullable=True),
            sa.ForeignKeyConstraint(
                ["user_id"],
                ["api_users.user_id"],
                name=op.f("fk_api_tokens_user_id_api_users"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("token_id", name=op.f("pk_api_tokens")),
        )
        op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_api_tokens_user_id"), table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("api_users")
