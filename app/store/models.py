"""The Hongtu schema: areas, places, organizations, party organizations, centers, stations, runs.

Geometry is WGS-84 (EPSG:4326) everywhere; the CRS a row arrived in is kept in ``source_crs``
so a ledger can say where its coordinates came from. External ids (``org_id``, ``place_id``…)
are the keys users know and re-import by; the integer ``id`` is internal.
"""

from __future__ import annotations

from datetime import UTC, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from geo import branches, coverage
from geo.vocabulary import (  # noqa: F401 (re-exported)
    AREA_CODE_LENGTHS,
    AREA_LEVELS,
    CENTER_LEVELS,
    COVERAGE_KINDS,
    ORG_TYPES,
    PLACE_KINDS,
    STATION_KINDS,
)

SRID = 4326

#: How an organization's position was found, most exact first: its own coordinates; inside the
#: place its row names (``place``) or its address names (``address``); a geocoder's answer;
#: somewhere in its stated community or street (approximate); placed by hand; not at all.
LOCATED_BY = ("coordinates", "place", "address", "geocoder", "community", "street", "manual", "unplaced")
#: Of those, the positions that only say which area an organization is in.
APPROXIMATE = ("community", "street")
#: And those that are the organization's own point: only for the others does the analysis take
#: the area its ledger states over the area its point falls in.
EXACT = ("coordinates", "geocoder", "manual")
#: How a position was set by hand: a click on the map, a place chosen from search, the phone's
#: own position; by another system through the API; or by an import given
#: ``--overwrite-positions`` over a hand-set one.
PLACEMENT_SOURCES = ("map", "place", "gps", "import", "api")
PARTY_ORG_TYPES = ("党委", "党总支", "党支部", "联合党支部")
INSTRUCTOR_ROLES = ("instructor", "liaison")


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


def _point() -> Geometry:
    return Geometry(geometry_type="POINT", srid=SRID, spatial_index=True)


class Area(Base):
    """An administrative area: district (区县), street (街道/乡镇), community (社区/村) or grid (网格)."""

    __tablename__ = "areas"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(15), unique=True)
    level: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_code: Mapped[str | None] = mapped_column(String(15), index=True)
    #: True where the polygon was generated (demo city, generated grids), not surveyed.
    generated: Mapped[bool] = mapped_column(Boolean, default=False)
    source_crs: Mapped[str] = mapped_column(String(16), default="wgs84", server_default="wgs84")
    geom = mapped_column(Geometry(geometry_type="MULTIPOLYGON", srid=SRID, spatial_index=True))


class Place(Base):
    """A park (园区), business circle (商圈), market (市场) or commercial building (商务楼宇)."""

    __tablename__ = "places"

    id: Mapped[int] = mapped_column(primary_key=True)
    place_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    address: Mapped[str | None] = mapped_column(String(300))
    demonstration: Mapped[bool] = mapped_column(Boolean, default=False)
    source_crs: Mapped[str] = mapped_column(String(16), default="wgs84")
    #: Polygon footprint, or a point for a building without one.
    geom = mapped_column(Geometry(geometry_type="GEOMETRY", srid=SRID, spatial_index=True))


party_org_coverage = Table(
    "party_org_coverage",
    Base.metadata,
    Column("party_org_id", ForeignKey("party_orgs.id", ondelete="CASCADE"), primary_key=True),
    Column("organization_id", ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
    # The key leads with the party organization; an organization's links are found by this.
    Index("ix_party_org_coverage_organization", "organization_id"),
)


class Organization(Base):
    """A 两新组织: a non-public enterprise (企业) or social organization (社会组织)."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    org_type: Mapped[str] = mapped_column(String(16), index=True)
    industry: Mapped[str | None] = mapped_column(String(64), index=True)
    credit_code: Mapped[str | None] = mapped_column(String(18))
    employees: Mapped[int] = mapped_column(Integer, default=0)
    #: Full members (正式党员) only; probationary members do not count towards a branch.
    party_members: Mapped[int] = mapped_column(Integer, default=0)
    address: Mapped[str | None] = mapped_column(String(300))
    operating: Mapped[bool] = mapped_column(Boolean, default=True)
    demonstration: Mapped[bool] = mapped_column(Boolean, default=False)
    source_crs: Mapped[str] = mapped_column(String(16), default="wgs84")
    #: One of ``LOCATED_BY``; NULL geometry exactly when "unplaced".
    located_by: Mapped[str] = mapped_column(String(16), default="coordinates", server_default="coordinates")
    #: How far the true position may be from the stored one (m); NULL for coordinates given.
    location_precision_m: Mapped[float | None] = mapped_column(Float)
    #: The community (or street) code the ledger states for it, which the analysis trusts over
    #: an approximate position.
    stated_area_code: Mapped[str | None] = mapped_column(String(15))
    geom = mapped_column(_point())

    party_orgs: Mapped[list[PartyOrg]] = relationship(secondary=party_org_coverage, back_populates="organizations")
    instructors: Mapped[list[Instructor]] = relationship(back_populates="organization")


class PartyOrg(Base):
    """A party organization (党委 / 党总支 / 党支部 / 联合党支部) and the units it covers."""

    __tablename__ = "party_orgs"

    id: Mapped[int] = mapped_column(primary_key=True)
    party_org_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    org_type: Mapped[str] = mapped_column(String(16))
    coverage_kind: Mapped[str] = mapped_column(String(16), index=True)
    members: Mapped[int] = mapped_column(Integer, default=0)
    #: The place an area-based organization is built on, if any.
    place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id", ondelete="SET NULL"))
    #: The industry an industry-based organization is built on, if any.
    industry: Mapped[str | None] = mapped_column(String(64))
    #: The secretary's name and phone: personal data, shown unmasked only to roles that need it.
    secretary: Mapped[str | None] = mapped_column(String(64))
    secretary_phone: Mapped[str | None] = mapped_column(String(32))

    organizations: Mapped[list[Organization]] = relationship(secondary=party_org_coverage, back_populates="party_orgs")


class InstructorPerson(Base):
    """A 党建指导员 as a person: who, from which unit, how to reach them, and when they serve.

    The phone is personal data, shown unmasked only to roles that need it. Dates are ISO
    ``YYYY-MM-DD`` text (both backends compare them as text); an empty one is open-ended.
    """

    __tablename__ = "instructor_people"

    id: Mapped[int] = mapped_column(primary_key=True)
    instructor_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    #: The unit that sent them (派出单位).
    unit: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    starts_on: Mapped[str | None] = mapped_column(String(10))
    ends_on: Mapped[str | None] = mapped_column(String(10))


class Instructor(Base):
    """An assignment of a 党建指导员 or 联络员 to an organization: its work coverage (工作覆盖)
    while active (see ``ACTIVE_ASSIGNMENT_SQL``). Without a person it is a ledger's plain
    yes (是否选派党建指导员), anonymous and always active."""

    __tablename__ = "instructors"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="instructor")
    assigned_on: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("instructor_people.id", ondelete="CASCADE"), index=True)

    organization: Mapped[Organization] = relationship(back_populates="instructors")


#: SQL true when assignment ``i`` covers an organization today: anonymous, or its person's
#: dates hold today (the date as ISO text on both backends; the server's day).
ACTIVE_ASSIGNMENT_SQL = (
    "(i.person_id IS NULL OR EXISTS (SELECT 1 FROM instructor_people ip WHERE ip.id = i.person_id "
    "AND (ip.starts_on IS NULL OR ip.starts_on <= CAST(CURRENT_DATE AS VARCHAR(10))) "
    "AND (ip.ends_on IS NULL OR ip.ends_on >= CAST(CURRENT_DATE AS VARCHAR(10)))))"
)


class ServiceCenter(Base):
    """A 党群服务中心 / 阵地 at street, community, building or park level."""

    __tablename__ = "service_centers"

    id: Mapped[int] = mapped_column(primary_key=True)
    center_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16), index=True)
    #: How many organizations the center can pair with (共驻共建).
    capacity: Mapped[int] = mapped_column(Integer, default=0)
    area_code: Mapped[str | None] = mapped_column(String(15), index=True)
    source_crs: Mapped[str] = mapped_column(String(16), default="wgs84")
    geom = mapped_column(_point())


class Station(Base):
    """A 新就业群体驿站 for delivery riders, couriers or ride-hailing drivers."""

    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), index=True)
    #: Comma-separated facilities: 饮水, 充电, 休息, 卫生间, 微波炉…
    facilities: Mapped[str | None] = mapped_column(Text)
    source_crs: Mapped[str] = mapped_column(String(16), default="wgs84")
    geom = mapped_column(_point())


class Road(Base):
    """A street or path of the walking network (步行路网): walking reach is measured along it."""

    __tablename__ = "roads"

    id: Mapped[int] = mapped_column(primary_key=True)
    road_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str | None] = mapped_column(String(32))
    #: False for roads people cannot walk (motorways, closed compounds): left out of the network.
    walkable: Mapped[bool] = mapped_column(Boolean, default=True)
    #: True where the network was generated (the demo city), not surveyed.
    generated: Mapped[bool] = mapped_column(Boolean, default=False)
    source_crs: Mapped[str] = mapped_column(String(16), default="wgs84")
    geom = mapped_column(Geometry(geometry_type="MULTILINESTRING", srid=SRID, spatial_index=True))


class AnalysisRun(Base):
    """One analysis run: when, with which parameters, on how many inputs."""

    __tablename__ = "analysis_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    parameters: Mapped[dict] = mapped_column(JSON, default=dict)
    input_counts: Mapped[dict] = mapped_column(JSON, default=dict)
    duration_s: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    #: City-wide figures, branch flags and stage timings of the run.
    summary: Mapped[dict | None] = mapped_column(JSON)
    #: The inputs version (see ``data_version``) the run read: older than the current one,
    #: the run's results no longer describe the ledger.
    inputs_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


def _run_id() -> Column:
    return Column("run_id", ForeignKey("analysis_runs.id", ondelete="CASCADE"), primary_key=True)


#: Per-organization results of a run: where it is, its status, its pairing and reach.
run_organizations = Table(
    "run_organizations",
    Base.metadata,
    _run_id(),
    Column("organization_id", Integer, primary_key=True),
    Column("org_id", String(64), nullable=False),
    Column("district_code", String(6)),
    Column("street_code", String(9)),
    Column("community_code", String(12)),
    Column("grid_code", String(15)),
    Column("place_id", String(64)),
    Column("status", String(16), nullable=False),
    Column("in_scope", Boolean, nullable=False),
    Column("center_id", String(64)),
    Column("pair_distance_m", Float),
    #: How close to home the pairing is: 0 its own community's center, 1 its street's, 2
    #: elsewhere (geo.vocabulary.PAIR_TIERS); NULL under a rule without tiers.
    Column("pair_tier", Integer),
    Column("reach_distance_m", Float),
    #: The nearest center of any level (what ``reach_distance_m`` measures to).
    Column("nearest_center_id", String(64)),
    Column("hotspot", Integer),
    #: Walking distance along the streets to the nearest center (NULL: unreachable, or the run
    #: measured by straight line), that center, and how far the organization is from the street.
    Column("walk_m", Float),
    Column("walk_center_id", String(64)),
    Column("walk_snap_m", Float),
    #: Where the run saw it (WGS-84; NULL when unplaced) and whether it was operating: what a
    #: later run compares to tell moved and closed organizations (本期变化).
    Column("lon", Float),
    Column("lat", Float),
    Column("operating", Boolean),
    Index("ix_run_organizations_status", "run_id", "status"),
    #: Joint-branch members and pairings name organizations by org_id: without it SQLite scans
    #: every organization of the run for each member.
    Index("ix_run_organizations_org_id", "run_id", "org_id"),
)

#: Counts and rates per area (district … grid), place, industry and the whole city.
run_areas = Table(
    "run_areas",
    Base.metadata,
    _run_id(),
    Column("level", String(16), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("name", String(200)),
    *[Column(c, Integer, nullable=False, server_default="0") for c in coverage.TALLY_COLUMNS],
    *[Column(c, Float) for c in coverage.RATE_COLUMNS],
    *[Column(c, Integer, nullable=False, server_default="0") for c in branches.BOUND_COLUMNS],
)

#: Result geometries: blank hot spots, service gaps per radius, proposed sites.
run_features = Table(
    "run_features",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", ForeignKey("analysis_runs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("count", Integer, nullable=False),
    Column("properties", JSON),
    Column("geom", Geometry(geometry_type="GEOMETRY", srid=SRID, spatial_index=True)),
)

run_joint_branches = Table(
    "run_joint_branches",
    Base.metadata,
    _run_id(),
    Column("proposal_id", Integer, primary_key=True),
    Column("org_id", String(64), primary_key=True),
    Column("party_members", Integer, nullable=False),
    Column("spread_m", Float, nullable=False),
    Column("round", Integer, nullable=False),
)

run_place_pairings = Table(
    "run_place_pairings",
    Base.metadata,
    _run_id(),
    Column("place_id", String(64), primary_key=True),
    Column("center_id", String(64)),
    Column("distance_m", Float),
)

#: One row: a counter every write to the store increments (in the writing transaction), so
#: anything derived from the data can tell whether it is still current; and a second one that
#: only writes to the loaded data move (imports, corrections — not runs), with its time.
data_version = Table(
    "data_version",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("inputs_version", BigInteger, nullable=False, server_default="0"),
    Column("inputs_changed_at", DateTime(timezone=True)),
)

#: The states of an analysis job started from the web, in the order it moves through them.
JOB_STATES = ("queued", "running", "done", "failed")

#: Analyses started from the web: at most one queued or running across every instance.
analysis_jobs = Table(
    "analysis_jobs",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("state", String(16), nullable=False),
    #: The stage the run is in (load, locate, coverage… as in its timings).
    Column("stage", String(32)),
    Column("username", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False, default=_now),
    #: Moved on at every stage: a job whose heartbeat stopped long ago died with its process.
    Column("heartbeat_at", DateTime(timezone=True), nullable=False, default=_now),
    Column("finished_at", DateTime(timezone=True)),
    Column("run_id", Integer),
    Column("error", Text),
)

#: Derived answers (low-zoom map aggregates) shared by every app instance, valid for the data
#: version they were computed from.
map_cache = Table(
    "map_cache",
    Base.metadata,
    Column("key", String(500), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
)

#: Roles of a user account (see :mod:`app.store.accounts` for what each may do).
ROLES = ("admin", "planner", "street", "community", "viewer")

#: A person who signs in. Passwords are kept only as werkzeug hashes (scrypt).
users = Table(
    "users",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(256), nullable=False),
    Column("role", String(16), nullable=False),
    #: The area the user's jurisdiction covers; None for the whole city.
    Column("area_code", String(15)),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False, default=_now),
    #: Raised by every password, role or state change: sessions and API tokens carry the
    #: version they were issued under and stop working when it moves on.
    Column("credential_version", Integer, nullable=False, default=1, server_default="1"),
    #: The second factor (RFC 6238 TOTP): base32 secret, the last time step accepted (no code is
    #: accepted twice), and the SHA-256 of each unused recovery code, comma-separated.
    Column("totp_secret", String(64)),
    Column("totp_last_step", BigInteger),
    Column("recovery_codes", Text),
)

#: Sessions ended by signing out (the session cookie itself is signed, not stored): a replayed
#: cookie of an ended session is refused.
ended_sessions = Table(
    "ended_sessions",
    Base.metadata,
    Column("sid", String(64), primary_key=True),
    Column("ended_at", DateTime(timezone=True), nullable=False),
)

#: Bearer tokens: a user's own API token ('api') or a published read-only embed link ('embed').
#: Only the SHA-256 of a token is stored; tokens are random (256 bits), so a fast hash suffices.
access_tokens = Table(
    "access_tokens",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("kind", String(8), nullable=False),
    Column("username", String(64), nullable=False),
    Column("area_code", String(15)),
    Column("layers", String(300)),
    Column("label", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False, default=_now),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("credential_version", Integer, nullable=False, default=1, server_default="1"),
)

#: Every position set by hand, and every import that replaced one: who, when, from where to
#: where. Positions are WGS-84 degrees; "from" is empty for an organization that had none.
placements = Table(
    "placements",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("organization_id", ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False, default=_now),
    Column("username", String(64)),
    Column("source", String(16), nullable=False),
    Column("from_located_by", String(16), nullable=False),
    Column("from_lon", Float),
    Column("from_lat", Float),
    Column("to_lon", Float, nullable=False),
    Column("to_lat", Float, nullable=False),
    #: The phone's stated accuracy (m) for a position from its GPS.
    Column("accuracy_m", Float),
    #: The place chosen, for a position from search.
    Column("place_id", String(64)),
)

#: How a correction reached the store: staff on Hongtu's own pages (the correction form, the
#: 待定位 map), or another system through the API (OGC API – Features Part 4).
CHANGE_VIAS = ("map", "api")

#: Every correction of an organization's record: who, when, how, which field, from what to
#: what (as text; lists ``;``-separated). Keyed by the external id, not the row, so that the
#: history of a deleted record is kept with the record's deletion as its last entry.
org_changes = Table(
    "org_changes",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", String(64), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False, default=_now),
    Column("username", String(64)),
    Column("via", String(16), nullable=False),
    Column("field", String(32), nullable=False),
    Column("old", Text),
    Column("new", Text),
)

#: Visits to organizations (走访记录) by instructors and staff: when, on which occasion, what was
#: done, and optionally where the phone was (WGS-84, its distance from the organization and
#: whether that is beyond the setting) and one photo (JPEG, re-encoded without its metadata).
visits = Table(
    "visits",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("organization_id", ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False, index=True),
    #: ISO date (YYYY-MM-DD), compared as text on both backends.
    Column("visited_on", String(10), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("notes", Text),
    Column("username", String(64)),
    Column("lon", Float),
    Column("lat", Float),
    Column("distance_m", Float),
    Column("far", Boolean, nullable=False, default=False),
    Column("photo", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False, default=_now),
)

#: A geocoder's answers by normalised address, so that a re-import asks the provider nothing.
#: lon/lat are WGS-84 (converted from the provider's datum); NULL when it found nothing.
geocodes = Table(
    "geocodes",
    Base.metadata,
    Column("provider", String(16), primary_key=True),
    Column("address_key", String(300), primary_key=True),
    Column("lon", Float),
    Column("lat", Float),
    #: The provider's word for how exact the answer is (e.g. 门牌号, 兴趣点).
    Column("level", String(32)),
    Column("answered_at", DateTime(timezone=True), nullable=False, default=_now),
)

#: Who did what when: logins, imports, analyses, exports, account and token changes.
audit_log = Table(
    "audit_log",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, default=_now, index=True),
    Column("username", String(64), index=True),
    Column("action", String(32), nullable=False, index=True),
    Column("target", String(300)),
    Column("rows", Integer),
    Column("ok", Boolean, nullable=False, default=True),
    Column("address", String(64)),
    Column("detail", Text),
)
