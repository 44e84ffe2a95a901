"""Each run's walking distance from every organization to its nearest center along the streets.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

COLUMNS = (("walk_m", sa.Float), ("walk_center_id", sa.String(64)), ("walk_snap_m", sa.Float))


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("run_organizations", sa.Column(name, kind))


def downgrade() -> None:
    with op.batch_alter_table("run_organizations") as batch:
        for name, _ in COLUMNS:
            batch.drop_column(name)
