"""The initial schema: areas, places, organizations, party organizations, instructors,
service centers, stations and analysis runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _geom(kind: str) -> Geometry:
    # geoalchemy2's table events turn this into AddGeometryColumn + SpatialIndex on SpatiaLite
    # and a typed column + GiST index on PostGIS.
    return Geometry(geometry_type=kind, srid=4326, spatial_index=True)


def upgrade() -> None:
    op.create_table(
        "areas",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(15), nullable=False, unique=True),
        sa.Column("level", sa.String(16), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("parent_code", sa.String(15), index=True),
        sa.Column("generated", sa.Boolean, nullable=False),
        sa.Column("geom", _geom("MULTIPOLYGON")),
    )
    op.create_table(
        "places",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("place_id", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False, index=True),
        sa.Column("address", sa.String(300)),
        sa.Column("demonstration", sa.Boolean, nullable=False),
        sa.Column("source_crs", sa.String(16), nullable=False),
        sa.Column("geom", _geom("GEOMETRY")),
    )
    op.create_table(
        "organizations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("org_id", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("org_type", sa.String(16), nullable=False, index=True),
        sa.Column("industry", sa.String(64), index=True),
        sa.Column("credit_code", sa.String(18), index=True),
        sa.Column("employees", sa.Integer, nullable=False),
        sa.Column("party_members", sa.Integer, nullable=False),
        sa.Column("address", sa.String(300)),
        sa.Column("operating", sa.Boolean, nullable=False),
        sa.Column("demonstration", sa.Boolean, nullable=False),
        sa.Column("source_crs", sa.String(16), nullable=False),
        sa.Column("geom", _geom("POINT")),
    )
    op.create_table(
        "party_orgs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("party_org_id", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("org_type", sa.String(16), nullable=False),
        sa.Column("coverage_kind", sa.String(16), nullable=False, index=True),
        sa.Column("members", sa.Integer, nullable=False),
        sa.Column("place_id", sa.Integer, sa.ForeignKey("places.id", ondelete="SET NULL")),
        sa.Column("industry", sa.String(64)),
    )
    op.create_table(
        "party_org_coverage",
        sa.Column(
            "party_org_id",
            sa.Integer,
            sa.ForeignKey("party_orgs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "organization_id",
            sa.Integer,
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_index("ix_party_org_coverage_organization", "party_org_coverage", ["organization_id"])
    op.create_table(
        "instructors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "organization_id",
            sa.Integer,
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("assigned_on", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "service_centers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("center_id", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("level", sa.String(16), nullable=False, index=True),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("area_code", sa.String(15), index=True),
        sa.Column("source_crs", sa.String(16), nullable=False),
        sa.Column("geom", _geom("POINT")),
    )
    op.create_table(
        "stations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("station_id", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False, index=True),
        sa.Column("facilities", sa.Text),
        sa.Column("source_crs", sa.String(16), nullable=False),
        sa.Column("geom", _geom("POINT")),
    )
    op.create_table(
        "analysis_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("input_counts", sa.JSON, nullable=False),
        sa.Column("duration_s", sa.Float),
        sa.Column("note", sa.Text),
    )


def downgrade() -> None:
    for table in (
        "analysis_runs",
        "stations",
        "service_centers",
        "instructors",
        "party_org_coverage",
        "party_orgs",
        "organizations",
        "places",
        "areas",
    ):
        op.drop_table(table)
