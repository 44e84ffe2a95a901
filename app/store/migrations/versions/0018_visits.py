"""Visits to organizations (走访记录).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "visits",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("organization_id", sa.Integer, sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("visited_on", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("notes", sa.Text),
        sa.Column("username", sa.String(64)),
        sa.Column("lon", sa.Float),
        sa.Column("lat", sa.Float),
        sa.Column("distance_m", sa.Float),
        sa.Column("far", sa.Boolean, nullable=False),
        sa.Column("photo", sa.LargeBinary),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_visits_organization_id", "visits", ["organization_id"])


def downgrade() -> None:
    op.drop_index("ix_visits_organization_id", "visits")
    op.drop_table("visits")
