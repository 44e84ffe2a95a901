"""The version of the inputs a run read, and analysis jobs started from the web.

``data_version`` gains a second counter, moved only by writes to the data users load (not by
runs and their derived rows), with the time of the last such write; ``analysis_runs`` records
the counter it read, so a page can say its results are older than the ledger.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("data_version", sa.Column("inputs_version", sa.BigInteger, nullable=False, server_default="0"))
    op.add_column("data_version", sa.Column("inputs_changed_at", sa.DateTime(timezone=True)))
    op.add_column("analysis_runs", sa.Column("inputs_version", sa.BigInteger, nullable=False, server_default="0"))
    op.create_table(
        "analysis_jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(32)),
        sa.Column("username", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("run_id", sa.Integer),
        sa.Column("error", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("analysis_jobs")
    with op.batch_alter_table("analysis_runs") as batch:
        batch.drop_column("inputs_version")
    with op.batch_alter_table("data_version") as batch:
        batch.drop_column("inputs_changed_at")
        batch.drop_column("inputs_version")
