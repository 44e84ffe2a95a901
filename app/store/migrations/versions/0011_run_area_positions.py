"""Every rate table counts the organizations without a position of their own: ``unplaced``
(none) and ``approximate`` (only the community or street their ledger states).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

COLUMNS = ("unplaced", "approximate")


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("run_areas", sa.Column(column, sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("run_areas") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column)
