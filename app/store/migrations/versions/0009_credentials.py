"""Credentials that can be withdrawn: a version per user (a password, role or state change
ends every session and API token issued before it), sessions ended at logout, and a second
factor (TOTP secret, the last time step used, hashed recovery codes).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("credential_version", sa.Integer, nullable=False, server_default="1"))
    op.add_column("users", sa.Column("totp_secret", sa.String(64)))
    op.add_column("users", sa.Column("totp_last_step", sa.BigInteger))
    op.add_column("users", sa.Column("recovery_codes", sa.Text))
    op.add_column("access_tokens", sa.Column("credential_version", sa.Integer, nullable=False, server_default="1"))
    op.create_table(
        "ended_sessions",
        sa.Column("sid", sa.String(64), primary_key=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ended_sessions")
    op.drop_column("access_tokens", "credential_version")
    for column in ("recovery_codes", "totp_last_step", "totp_secret", "credential_version"):
        op.drop_column("users", column)
