"""Analysis results, stored per run so a report can cite them and two runs can be compared.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _run_id() -> sa.Column:
    return sa.Column("run_id", sa.Integer, sa.ForeignKey("analysis_runs.id", ondelete="CASCADE"), primary_key=True)


def upgrade() -> None:
    op.add_column("analysis_runs", sa.Column("summary", sa.JSON))
    op.create_table(
        "run_organizations",
        _run_id(),
        sa.Column("organization_id", sa.Integer, primary_key=True),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("district_code", sa.String(6)),
        sa.Column("street_code", sa.String(9)),
        sa.Column("community_code", sa.String(12)),
        sa.Column("grid_code", sa.String(15)),
        sa.Column("place_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("in_scope", sa.Boolean, nullable=False),
        sa.Column("center_id", sa.String(64)),
        sa.Column("pair_distance_m", sa.Float),
        sa.Column("reach_distance_m", sa.Float),
        sa.Column("hotspot", sa.Integer),
    )
    op.create_index("ix_run_organizations_status", "run_organizations", ["run_id", "status"])
    op.create_table(
        "run_areas",
        _run_id(),
        sa.Column("level", sa.String(16), primary_key=True),
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200)),
        *[
            sa.Column(c, sa.Integer, nullable=False)
            for c in ("orgs", "in_scope", "own", "joint", "area_based", "industry_based", "work", "blank")
        ],
        *[sa.Column(c, sa.Float) for c in ("org_coverage_rate", "own_rate", "work_rate", "both_rate")],
    )
    op.create_table(
        "run_features",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "run_id", sa.Integer, sa.ForeignKey("analysis_runs.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("properties", sa.JSON),
        sa.Column("geom", Geometry(geometry_type="GEOMETRY", srid=4326, spatial_index=True)),
    )
    op.create_table(
        "run_joint_branches",
        _run_id(),
        sa.Column("proposal_id", sa.Integer, primary_key=True),
        sa.Column("org_id", sa.String(64), primary_key=True),
        sa.Column("party_members", sa.Integer, nullable=False),
        sa.Column("spread_m", sa.Float, nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
    )
    op.create_table(
        "run_place_pairings",
        _run_id(),
        sa.Column("place_id", sa.String(64), primary_key=True),
        sa.Column("center_id", sa.String(64)),
        sa.Column("distance_m", sa.Float),
    )


def downgrade() -> None:
    for table in ("run_place_pairings", "run_joint_branches", "run_features", "run_areas", "run_organizations"):
        op.drop_table(table)
    op.drop_column("analysis_runs", "summary")
