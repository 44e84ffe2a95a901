"""Data versions start at a random number, so a database made anew never repeats one.

Processes keep copies of answers and layers under the data version they read (see
``app.store.cache``). A database dropped and created again under the
same URL counted from 1 again, and a running process could take its version 5 for the old
database's version 5 and serve what that one held. Starting each database's count at a random
number below 2^52 (a 64-bit column) makes such a repeat as good as impossible.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":  # SQLite's INTEGER is 64-bit already
        op.alter_column("data_version", "version", type_=sa.BigInteger)
        op.alter_column("map_cache", "version", type_=sa.BigInteger)
    # Kept answers belong to the old count.
    op.execute("DELETE FROM map_cache")
    op.execute(sa.text("UPDATE data_version SET version = :v").bindparams(v=1 + secrets.randbelow(2**52)))


def downgrade() -> None:
    op.execute("DELETE FROM map_cache")
    op.execute("UPDATE data_version SET version = 1")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("map_cache", "version", type_=sa.Integer)
        op.alter_column("data_version", "version", type_=sa.Integer)
