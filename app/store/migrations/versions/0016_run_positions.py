"""Where each run saw each organization and whether it was operating (本期变化); the tier of
its pairing and its straight nearest center.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

COLUMNS = (
    ("lon", sa.Float),
    ("lat", sa.Float),
    ("operating", sa.Boolean),
    ("pair_tier", sa.Integer),
    ("nearest_center_id", sa.String(64)),
)


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("run_organizations", sa.Column(name, kind))


def downgrade() -> None:
    with op.batch_alter_table("run_organizations") as batch:
        for name, _ in COLUMNS:
            batch.drop_column(name)
