"""How each organization was placed: ``located_by``, a precision in metres, and the
community or street its ledger states (real ledgers carry addresses, not coordinates).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("organizations", sa.Column("located_by", sa.String(16), nullable=False, server_default="coordinates"))
    op.add_column("organizations", sa.Column("location_precision_m", sa.Float))
    op.add_column("organizations", sa.Column("stated_area_code", sa.String(15)))


def downgrade() -> None:
    for column in ("stated_area_code", "location_precision_m", "located_by"):
        op.drop_column("organizations", column)
