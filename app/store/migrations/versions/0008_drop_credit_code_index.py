"""No index on organizations.credit_code: no query can use it.

The only query reading the column is the search box, which asks for a name or an address
containing the text *or* a credit code starting with it; the ``OR`` with two substring tests
is a full scan whatever indexes exist. Keeping the index up cost every import its build:
0.1 s of importing 100,000 organizations on PostgreSQL, 0.05 s on SQLite.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_organizations_credit_code", table_name="organizations")


def downgrade() -> None:
    op.create_index("ix_organizations_credit_code", "organizations", ["credit_code"])
