"""An index on each run's organizations by org_id, which joint-branch members join on.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_run_organizations_org_id", "run_organizations", ["run_id", "org_id"])


def downgrade() -> None:
    op.drop_index("ix_run_organizations_org_id", "run_organizations")
