"""Kept answers compressed with LZ4 on PostgreSQL.

An API page of 2,000 organizations is about 1 MB of GeoJSON: keeping one took PostgreSQL's
default compression (pglz) 18 ms, LZ4 7 ms (measured at 100,000 organizations). LZ4 needs
PostgreSQL 14 or newer built with it, as Debian's is; elsewhere the default stays. SQLite
keeps answers uncompressed either way.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    found = bind.execute(
        sa.text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar()
    return bool(found)


def upgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE map_cache ALTER COLUMN body SET COMPRESSION lz4")


def downgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE map_cache ALTER COLUMN body SET COMPRESSION default")
