"""journeys' setting references; users' email addresses

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 04:00:00

Self-contained like 0003: ``records rebuild`` runs every migration again, and these rows
(which Temporal cannot give back) are created only when absent and kept across a rebuild.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "journey_refs" not in set(inspector.get_table_names()):
        op.create_table(
            "journey_refs",
            sa.Column("workflow_id", sa.String(length=80), nullable=False),
            sa.Column("setting_id", sa.String(length=80), nullable=False),
            sa.Column("reference", sa.String(length=80), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("workflow_id", name=op.f("pk_journey_refs")),
        )
        op.create_index(
            "uq_journey_refs_open",
            "journey_refs",
            ["setting_id", "reference"],
            unique=True,
            sqlite_where=sa.text("status != 'closed'"),
            postgresql_where=sa.text("status != 'closed'"),
        )
    if "email" not in {c["name"] for c in inspector.get_columns("api_users")}:
        with op.batch_alter_table("api_users") as batch:
            batch.add_column(sa.Column("email", sa.String(length=320), nullable=True))
            batch.create_unique_constraint(op.f("uq_api_users_email"), ["email"])


def downgrade() -> None:
    with op.batch_alter_table("api_users") as batch:
        batch.drop_constraint(op.f("uq_api_users_email"), type_="unique")
        batch.drop_column("email")
    op.drop_index("uq_journey_refs_open", table_name="journey_refs")
    op.drop_table("journey_refs")
