"""The walking network (步行路网): roads and paths, for walking reach.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "roads",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("road_id", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200)),
        sa.Column("kind", sa.String(32)),
        sa.Column("walkable", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("generated", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("source_crs", sa.String(16), nullable=False, server_default="wgs84"),
        # geoalchemy2 adds the column and its spatial index on either backend (see 0001).
        sa.Column("geom", Geometry(geometry_type="MULTILINESTRING", srid=4326, spatial_index=True)),
    )


def downgrade() -> None:
    op.drop_table("roads")
