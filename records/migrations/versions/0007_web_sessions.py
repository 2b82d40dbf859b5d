"""the web app: one-time sign-in links, server-side sessions, forms' submission keys

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 05:00:00

Self-contained like 0003 and 0005: these rows are not the read model's (Temporal cannot give
them back), so they are created only when absent and kept across ``records rebuild``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tables = set(sa.inspect(op.get_bind()).get_table_names())
    if "web_sign_in_links" not in tables:
        op.create_table(
            "web_sign_in_links",
            sa.Column("link_hash", sa.String(length=64), nullable=False),
            sa.Column("user_id", sa.String(length=80), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
            sa.ForeignKeyConstraint(
                ["user_id"],
                ["api_users.user_id"],
                name=op.f("fk_web_sign_in_links_user_id_api_users"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("link_hash", name=op.f("pk_web_sign_in_links")),
        )
        op.create_index(op.f("ix_web_sign_in_links_user_id"), "web_sign_in_links", ["user_id"])
    if "web_sessions" not in tables:
        op.create_table(
            "web_sessions",
            sa.Column("session_hash", sa.String(length=64), nullable=False),
            sa.Column("user_id", sa.String(length=80), nullable=True),
            sa.Column("token_id", sa.String(length=16), nullable=True),
            sa.Column("csrf_token", sa.String(length=64), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
            sa.ForeignKeyConstraint(
                ["user_id"],
                ["api_users.user_id"],
                name=op.f("fk_web_sessions_user_id_api_users"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("session_hash", name=op.f("pk_web_sessions")),
        )
        op.create_index(op.f("ix_web_sessions_user_id"), "web_sessions", ["user_id"])
    if "web_form_uses" not in tables:
        op.create_table(
            "web_form_uses",
            sa.Column("form_key", sa.String(length=64), nullable=False),
            sa.Column("session_hash", sa.String(length=64), nullable=False),
            sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("form_key", name=op.f("pk_web_form_uses")),
        )


def downgrade() -> None:
    op.drop_table("web_form_uses")
    op.drop_index(op.f("ix_web_sessions_user_id"), table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_index(op.f("ix_web_sign_in_links_user_id"), table_name="web_sign_in_links")
    op.drop_table("web_sign_in_links")
