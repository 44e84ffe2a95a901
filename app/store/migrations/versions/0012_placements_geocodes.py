"""Positions set by hand, with their history (``placements``), and a geocoder's answers by
normalised address (``geocodes``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "placements",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("organization_id", sa.Integer, sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("username", sa.String(64)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("from_located_by", sa.String(16), nullable=False),
        sa.Column("from_lon", sa.Float),
        sa.Column("from_lat", sa.Float),
        sa.Column("to_lon", sa.Float, nullable=False),
        sa.Column("to_lat", sa.Float, nullable=False),
        sa.Column("accuracy_m", sa.Float),
        sa.Column("place_id", sa.String(64)),
    )
    op.create_index("ix_placements_organization_id", "placements", ["organization_id"])
    op.create_table(
        "geocodes",
        sa.Column("provider", sa.String(16), primary_key=True),
        sa.Column("address_key", sa.String(300), primary_key=True),
        sa.Column("lon", sa.Float),
        sa.Column("lat", sa.Float),
        sa.Column("level", sa.String(32)),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("geocodes")
    op.drop_index("ix_placements_organization_id", "placements")
    op.drop_table("placements")
