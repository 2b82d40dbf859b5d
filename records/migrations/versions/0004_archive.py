"""archive: closed runs' histories and the purge log

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 23:40:00.000000

The archive tables are created only when absent, and ``senflow records rebuild`` empties only
the tables projected from Temporal (records.models.PROJECTED_TABLES): the archive (the only
copy of histories Temporal has deleted) is never dropped or recreated.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "archived_runs" not in existing:
        op.create_table(
            "archived_runs",
            sa.Column("workflow_id", sa.String(length=80), nullable=False),
            sa.Column("run_id", sa.String(length=80), nullable=False),
            sa.Column("first_run_id", sa.String(length=80), nullable=False),
            sa.Column("next_run_id", sa.String(length=80), nullable=True),
            sa.Column("status", sa.String(length=40), nullable=False),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("events", sa.Integer(), nullable=False),
            sa.Column("size", sa.Integer(), nullable=False),
            sa.Column("stored_size", sa.Integer(), nullable=False),
            sa.Column("sha256", sa.String(length=64), nullable=False),
            sa.Column("location", sa.String(length=1000), nullable=False),
            sa.Column("content", sa.LargeBinary(), nullable=True),
            sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("archived_by", sa.String(length=200), nullable=True),
            sa.PrimaryKeyConstraint("workflow_id", "run_id", name=op.f("pk_archived_runs")),
        )
        op.create_index(
            op.f("ix_archived_runs_first_run_id"), "archived_runs", ["first_run_id"], unique=False
        )
    if "purge_log" not in existing:
        op.create_table(
            "purge_log",
            sa.Column("purge_id", sa.String(length=36), nullable=False),
            sa.Column("pupil_ref", sa.String(length=64), nullable=False),
            sa.Column("actor_id", sa.String(length=80), nullable=False),
            sa.Column("actor_role", sa.String(length=40), nullable=False),
            sa.Column("reason", sa.String(length=40), nullable=False),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("archived_runs", sa.Integer(), nullable=False),
            sa.Column("read_model_rows", sa.Integer(), nullable=False),
            sa.Column("temporal_runs", sa.Integer(), nullable=False),
            sa.Column("letters", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("purge_id", name=op.f("pk_purge_log")),
        )
        op.create_index(op.f("ix_purge_log_pupil_ref"), "purge_log", ["pupil_ref"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_purge_log_pupil_ref"), table_name="purge_log")
    op.drop_table("purge_log")
    op.drop_index(op.f("ix_archived_runs_first_run_id"), table_name="archived_runs")
    op.drop_table("archived_runs")
