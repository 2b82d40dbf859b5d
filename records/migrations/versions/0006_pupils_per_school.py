"""pupils: keyed by (pupil reference, school)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 04:20:00

A pupil id is the school's own reference: two schools may each have a "p1". Keyed by the
reference alone, one school's row overwrote the other's. The rows are copied across.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = "pupil_id, school_id, birth_year, birth_month, year_group"


def _pupils(name: str, *key: str) -> None:
    # PostgreSQL names a constraint's index after it, so the copy's key needs a name of its
    # own until the old table is gone; SQLite keeps constraint names per table
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        name,
        sa.Column("pupil_id", sa.String(length=80), nullable=False),
        sa.Column("school_id", sa.String(length=80), nullable=False),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("birth_month", sa.Integer(), nullable=True),
        sa.Column("year_group", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint(*key, name="pk_pupils" if sqlite else f"pk_{name}"),
    )


def _swap(*key: str) -> None:
    _pupils("pupils_next", *key)
    op.execute(f"INSERT INTO pupils_next ({COLUMNS}) SELECT {COLUMNS} FROM pupils")
    op.drop_index("ix_pupils_school_id", table_name="pupils")
    op.drop_table("pupils")
    op.rename_table("pupils_next", "pupils")
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":  # the constraint keeps the name it was made with
        op.execute("ALTER TABLE pupils RENAME CONSTRAINT pk_pupils_next TO pk_pupils")
    op.create_index("ix_pupils_school_id", "pupils", ["school_id"], unique=False)


def upgrade() -> None:
    _swap("pupil_id", "school_id")


def downgrade() -> None:
    # one row per reference again: the latest school's wins, as it did before
    op.execute(
        "DELETE FROM pupils WHERE EXISTS (SELECT 1 FROM pupils other WHERE "
        "other.pupil_id = pupils.pupil_id AND other.school_id > pupils.school_id)"
    )
    _swap("pupil_id")
