"""contacts, and the channel each message went by

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 20:42:15.712434
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("contact_id", sa.String(length=80), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.PrimaryKeyConstraint("contact_id", name=op.f("pk_contacts")),
    )
    with op.batch_alter_table("messages_sent", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(length=40), server_default="outbox", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("messages_sent", schema=None) as batch_op:
        batch_op.drop_column("channel")

    op.drop_table("contacts")
