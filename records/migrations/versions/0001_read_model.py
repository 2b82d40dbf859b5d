"""read model: pupils, journeys and their history

Revision ID: 0001
Revises:
Create Date: 2026-11-24 20:31:48.729146
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consultations",
        sa.Column("workflow_id", sa.String(length=80), nullable=False),
        sa.Column("consultation_id", sa.String(length=80), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("reminder_sent", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("workflow_id", "consultation_id", name=op.f("pk_consultations")),
    )
    op.create_table(
        "ieps",
        sa.Column("workflow_id", sa.String(length=80), nullable=False),
        sa.Column("iep_id", sa.String(length=80), nullable=False),
        sa.Column("stage", sa.String(length=40), nullable=False),
        sa.Column("agreed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("review_date", sa.Date(), nullable=False),
        sa.Column("strategies", sa.JSON(), nullable=False),
        sa.Column("provision", sa.JSON(), nullable=False),
        sa.Column("responsible", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("workflow_id", "iep_id", name=op.f("pk_ieps")),
    )
    op.create_table(
        "journeys",
        sa.Column("workflow_id", sa.String(length=80), nullable=False),
        sa.Column("pupil_id", sa.String(length=80), nullable=False),
        sa.Column("school_id", sa.String(length=80), nullable=False),
        sa.Column("policy", sa.String(length=40), nullable=False),
        sa.Column("stage", sa.String(length=40), nullable=False),
        sa.Column("stage_label", sa.String(length=40), nullable=False),
        sa.Column("phase", sa.String(length=40), nullable=False),
        sa.Column("early_years", sa.Boolean(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_reason", sa.String(length=40), nullable=True),
        sa.Column("next_review_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_review_date", sa.Date(), nullable=True),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.Column("last_step", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("workflow_id", name=op.f("pk_journeys")),
    )
    with op.batch_alter_table("journeys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_journeys_pupil_id"), ["pupil_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_journeys_school_id"), ["school_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_journeys_stage"), ["stage"], unique=False)

    op.create_table(
        "messages_sent",
        sa.Column("workflow_id", sa.String(length=80), nullable=False),
        sa.Column("notice_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("recipient_role", sa.String(length=40), nullable=False),
        sa.Column("recipient_id", sa.String(length=80), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workflow_id", "notice_key", name=op.f("pk_messages_sent")),
    )
    op.create_table(
        "pupils",
        sa.Column("pupil_id", sa.String(length=80), nullable=False),
        sa.Column("school_id", sa.String(length=80), nullable=False),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("birth_month", sa.Integer(), nullable=True),
        sa.Column("year_group", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("pupil_id", name=op.f("pk_pupils")),
    )
    with op.batch_alter_table("pupils", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pupils_school_id"), ["school_id"], unique=False)

    op.create_table(
        "referrals",
        sa.Column("workflow_id", sa.String(length=80), nullable=False),
        sa.Column("referral_id", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("specialist_id", sa.String(length=80), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("chases", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("workflow_id", "referral_id", name=op.f("pk_referrals")),
    )
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referrals_kind"), ["kind"], unique=False)

    op.create_table(
        "reviews",
        sa.Column("workflow_id", sa.String(length=80), nullable=False),
        sa.Column("review_id", sa.String(length=80), nullable=False),
        sa.Column("iep_id", sa.String(length=80), nullable=False),
        sa.Column("stage", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=40), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(length=80), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("workflow_id", "review_id", name=op.f("pk_reviews")),
    )
    op.create_table(
        "stage_changes",
        sa.Column("workflow_id", sa.String(length=80), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("from_stage", sa.String(length=40), nullable=False),
        sa.Column("to_stage", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(length=80), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("triggers", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("workflow_id", "step", name=op.f("pk_stage_changes")),
    )
    op.create_table(
        "consultation_responses",
        sa.Column("workflow_id", sa.String(length=80), nullable=False),
        sa.Column("consultation_id", sa.String(length=80), nullable=False),
        sa.Column("parent_id", sa.String(length=80), nullable=False),
        sa.Column("reply", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id", "consultation_id"],
            ["consultations.workflow_id", "consultations.consultation_id"],
            name=op.f("fk_consultation_responses_workflow_id_consultations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workflow_id", "consultation_id", "parent_id", name=op.f("pk_consultation_responses")
        ),
    )
    op.create_table(
        "iep_targets",
        sa.Column("workflow_id", sa.String(length=80), nullable=False),
        sa.Column("iep_id", sa.String(length=80), nullable=False),
        sa.Column("target_index", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("success_criterion", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id", "iep_id"],
            ["ieps.workflow_id", "ieps.iep_id"],
            name=op.f("fk_iep_targets_workflow_id_ieps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workflow_id", "iep_id", "target_index", name=op.f("pk_iep_targets")
        ),
    )
    op.create_table(
        "review_progress",
        sa.Column("workflow_id", sa.String(length=80), nullable=False),
        sa.Column("review_id", sa.String(length=80), nullable=False),
        sa.Column("target_index", sa.Integer(), nullable=False),
        sa.Column("progress", sa.Text(), nullable=False),
        sa.Column("met", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id", "review_id"],
            ["reviews.workflow_id", "reviews.review_id"],
            name=op.f("fk_review_progress_workflow_id_reviews"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workflow_id", "review_id", "target_index", name=op.f("pk_review_progress")
        ),
    )


def downgrade() -> None:
    op.drop_table("review_progress")
    op.drop_table("iep_targets")
    op.drop_table("consultation_responses")
    op.drop_table("stage_changes")
    op.drop_table("reviews")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referrals_kind"))

    op.drop_table("referrals")
    with op.batch_alter_table("pupils", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pupils_school_id"))

    op.drop_table("pupils")
    op.drop_table("messages_sent")
    with op.batch_alter_table("journeys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_journeys_stage"))
        batch_op.drop_index(batch_op.f("ix_journeys_school_id"))
        batch_op.drop_index(batch_op.f("ix_journeys_pupil_id"))

    op.drop_table("journeys")
    op.drop_table("ieps")
    op.drop_table("consultations")
