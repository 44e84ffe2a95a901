"""Record the source CRS of imported areas, as every other spatial table does.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("areas", sa.Column("source_crs", sa.String(16), nullable=False, server_default="wgs84"))


def downgrade() -> None:
    op.drop_column("areas", "source_crs")
