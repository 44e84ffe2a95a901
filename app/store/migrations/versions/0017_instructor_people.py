"""Instructors as people (姓名, 派出单位, 联系电话, dates), and assignments naming them.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instructor_people",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("instructor_id", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(200)),
        sa.Column("phone", sa.String(32)),
        sa.Column("starts_on", sa.String(10)),
        sa.Column("ends_on", sa.String(10)),
    )
    # Batch mode: SQLite adds a constraint only by copying the table (no geometry here).
    with op.batch_alter_table("instructors") as batch:
        batch.add_column(
            sa.Column(
                "person_id",
                sa.Integer,
                sa.ForeignKey("instructor_people.id", ondelete="CASCADE", name="fk_instructors_person_id"),
            )
        )
    op.create_index("ix_instructors_person_id", "instructors", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_instructors_person_id", "instructors")
    with op.batch_alter_table("instructors") as batch:
        batch.drop_column("person_id")
    op.drop_table("instructor_people")
