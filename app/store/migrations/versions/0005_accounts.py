"""Accounts, access tokens (API and published embeds), the audit log, and a party organization's
secretary contact (personal data: masked for roles that do not need it).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("party_orgs", sa.Column("secretary", sa.String(64)))
    op.add_column("party_orgs", sa.Column("secretary_phone", sa.String(32)))
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("area_code", sa.String(15)),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "access_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("area_code", sa.String(15)),
        sa.Column("layers", sa.String(300)),
        sa.Column("label", sa.String(200)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("username", sa.String(64), index=True),
        sa.Column("action", sa.String(32), nullable=False, index=True),
        sa.Column("target", sa.String(300)),
        sa.Column("rows", sa.Integer),
        sa.Column("ok", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("address", sa.String(64)),
        sa.Column("detail", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("access_tokens")
    op.drop_table("users")
    with op.batch_alter_table("party_orgs") as batch:
        batch.drop_column("secretary_phone")
        batch.drop_column("secretary")
