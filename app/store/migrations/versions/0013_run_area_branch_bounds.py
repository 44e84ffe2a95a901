"""Per area, the joint-branch units: eligible, covered by the proposals, and the upper bound on
how many any proposals could cover (issue 26).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

COLUMNS = ("branch_eligible", "branch_covered", "branch_bound")


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("run_areas", sa.Column(column, sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("run_areas") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column)
