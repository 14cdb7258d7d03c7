"""The registry as SQLModel models, mapped onto the tables the SQL migrations create.

The migrations (`sql/`) stay the schema's source of truth: nothing here creates a table, and
tests/api/test_admin.py compares every table model with the database's own columns, types and
nullability, so a model cannot drift from them.

Each entity comes as a family: `…Base` holds the fields a client may set, with the checks their
columns need (the patterns and value lists of the SQL CHECKs, integers within `integer`, text
without U+0000 and of a sane length, strict JSON types), so a bad value is a 422 naming the field
and never reaches the database; the table model adds the key and what the platform sets; `…Create`
and `…Update` are request bodies (in an Update every field may be left out, and only the columns
that may be null accept null); `…Public` is what the API answers and what the audit log keeps as
before and after (never a password hash). SQLModel does not validate table models, so every row
is built from a validated Create or Update.
"""

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

import pydantic
from pydantic import BaseModel, Strict, StrictBool
from sqlalchemy import CHAR, BigInteger, DateTime, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from api.auth.models import Role
from api.inputs import INT_MAX, DbDate, DbText
from core.contract import DEVICE_ID_PATTERN, TOPIC_ROOT
from core.scope import Level

T = TypeVar("T")

# -- what a column can hold -----------------------------------------------------------------------
Code = Annotated[str, pydantic.Field(pattern=r"^[A-Za-z0-9_-]{1,32}$", examples=["421303"])]  # area, community
SchoolCode = Annotated[str, pydantic.Field(pattern=r"^[0-9]{10}$", description="学校标识码: 10 digits",
                                  examples=["4213030001"])]
DeviceId = Annotated[str, pydantic.Field(pattern=DEVICE_ID_PATTERN, examples=["B4213030001-001"])]
Username = Annotated[str, pydantic.Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$", examples=["zengdu"],
                                description="2–64 letters, digits and _ . @ -, starting with a letter or digit")]
Name = Annotated[DbText, pydantic.Field(min_length=1, max_length=100)]
Label = Annotated[DbText, pydantic.Field(min_length=1, max_length=64)]  # a room, a vendor, a model
Reason = Annotated[DbText, pydantic.Field(min_length=1, max_length=500)]  # device_all.retired_reason's CHECK
Password = Annotated[DbText, pydantic.Field(min_length=1, max_length=1024, description="checked by the password policy")]
Count = Annotated[int, Strict(), pydantic.Field(ge=0, le=INT_MAX)]
Positive = Annotated[int, Strict(), pydantic.Field(ge=1, le=INT_MAX)]
Latitude = Annotated[float, Strict(), pydantic.Field(ge=-90, le=90)]
Longitude = Annotated[float, Strict(), pydantic.Field(ge=-180, le=180)]
WebhookUrl = Annotated[str, pydantic.Field(pattern=r"^https?://[^\s\x00]+$", max_length=500)]
Email = Annotated[str, pydantic.Field(pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$", max_length=254)]
# The patrol may publish only under edu/ops/ (ops/broker_auth.py's access list); no wildcards.
OpsTopic = Annotated[str, pydantic.Field(pattern=r"^edu/ops/[A-Za-z0-9_/-]{1,120}$", examples=["edu/ops/zengdu"])]

Locale = Literal["urban", "town", "rural"]
Stage = Literal["primary", "junior", "nine_year", "complete", "senior", "teaching_point"]
DeviceKind = Literal["board", "recorder", "gateway"]
CommunityKind = Literal["merged", "co_built", "collaborative", "mixed"]
MemberRole = Literal["lead", "member"]
HistoryEntity = Literal["school", "device", "community", "community_member", "user"]
HistoryChange = Literal["created", "moved", "changed", "retired", "returned", "joined", "left", "disabled",
                        "enabled"]
HistorySource = Literal["import", "admin", "cli"]


def _now_column() -> Any:
    """A timestamptz column the database fills with now() (left out of the INSERT when None)."""
    return Field(default=None, sa_type=DateTime(timezone=True), nullable=False,
                 sa_column_kwargs={"server_default": func.now()})


class Page(BaseModel, Generic[T]):
    """One page of a list, and how many match in all."""

    items: list[T]
    total: int


# -- the administrative levels --------------------------------------------------------------------
class ProvinceBase(SQLModel):
    name: Name


class Province(ProvinceBase, table=True):
    code: str = Field(primary_key=True)


class ProvinceCreate(ProvinceBase):
    code: Code


class ProvinceUpdate(SQLModel):
    name: Name = None


class ProvincePublic(ProvinceBase):
    code: str


class CityBase(SQLModel):
    name: Name
    province_code: Code


class City(CityBase, table=True):
    code: str = Field(primary_key=True)


class CityCreate(CityBase):
    code: Code


class CityUpdate(SQLModel):
    name: Name = None
    province_code: Code = None


class CityPublic(CityBase):
    code: str


class CountyBase(SQLModel):
    name: Name
    city_code: Code


class County(CountyBase, table=True):
    code: str = Field(primary_key=True)
    province_code: str  # the city's (sql/025)
    city_set_by: str | None = None  # who gave it a city against the division data (sql/031, registry/divisions.py)


class CountyCreate(CountyBase):
    code: Code


class CountyUpdate(SQLModel):
    name: Name = None
    city_code: Code = None


class CountyPublic(CountyBase):
    code: str
    province_code: str


# -- schools ---------------------------------------------------------------------------------------
class SchoolBase(SQLModel):
    name: Name
    county_code: Code
    locale: Locale = Field(sa_type=Text)
    stage: Stage = Field(sa_type=Text)
    classes: Count
    students: Count
    teachers: Count
    uplink_mbps: Positive = Field(default=100, sa_column_kwargs={"server_default": "100"})
    latitude: Latitude | None = None
    longitude: Longitude | None = None


class School(SchoolBase, table=True):
    code: str = Field(primary_key=True, sa_type=CHAR(10))
    city_code: str  # the county's (sql/025)
    province_code: str


class SchoolCreate(SchoolBase):
    code: SchoolCode


class SchoolUpdate(SQLModel):
    """A change of county moves the school (its city and province follow the county)."""

    name: Name = None
    county_code: Code = None
    locale: Locale = None
    stage: Stage = None
    classes: Count = None
    students: Count = None
    teachers: Count = None
    uplink_mbps: Positive = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None


class SchoolPublic(SchoolBase):
    code: str
    city_code: str
    province_code: str


class SchoolRow(SchoolPublic):
    county_name: str | None = None


# -- devices ---------------------------------------------------------------------------------------
class DeviceBase(SQLModel):
    kind: DeviceKind = Field(sa_type=Text)
    school_code: SchoolCode = Field(sa_type=CHAR(10))
    room: Label
    vendor: Label
    model: Label
    installed_on: DbDate | None = None


class Device(DeviceBase, table=True):
    """Every device ever registered; the view `device` shows those in service (sql/029)."""

    __tablename__ = "device_all"
    id: str = Field(primary_key=True)
    secret_hash: str | None = None
    registered_at: datetime | None = _now_column()
    retired_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    retired_reason: str | None = None


class DeviceCreate(DeviceBase):
    id: DeviceId


class DeviceUpdate(SQLModel):
    """A change of school or room moves the device. Its kind is what it is: never changed."""

    school_code: SchoolCode = None
    room: Label = None
    vendor: Label = None
    model: Label = None
    installed_on: DbDate | None = None


class DevicePublic(DeviceBase):
    id: str
    registered_at: datetime
    retired_at: datetime | None
    retired_reason: str | None


class DeviceRow(DevicePublic):
    school_name: str | None = None


class DeviceRetire(BaseModel):
    reason: Reason


class MqttCredentials(BaseModel):
    """What a device logs in to the broker with (core.credentials), and where."""

    username: str = pydantic.Field(description="the device id")
    password: str = pydantic.Field(description="derived from the provisioning secret; the broker keeps only its hash")
    host: str | None
    port: int | None
    tls: bool
    topic_prefix: str = pydantic.Field(examples=[f"{TOPIC_ROOT}/B4213030001-001/"])


class DeviceRegistered(DevicePublic):
    mqtt: MqttCredentials | None = Field(None, description="null when no provisioning secret is configured")
    note: str | None = None


# -- communities (教联体) ----------------------------------------------------------------------------
class CommunityBase(SQLModel):
    name: Name
    kind: CommunityKind = Field(sa_type=Text)
    lead_school_code: SchoolCode = Field(sa_type=CHAR(10))
    founded_on: DbDate | None = None


class Community(CommunityBase, table=True):
    code: str = Field(primary_key=True)
    county_code: str  # the lead school's


class CommunityCreate(CommunityBase):
    code: Code


class CommunityUpdate(SQLModel):
    """A new lead school makes the previous one a member; the community's county is its lead's."""

    name: Name = None
    kind: CommunityKind = None
    lead_school_code: SchoolCode = None
    founded_on: DbDate | None = None


class CommunityPublic(CommunityBase):
    code: str
    county_code: str


class CommunityMemberBase(SQLModel):
    role: MemberRole = Field(sa_type=Text)
    joined_on: DbDate | None = None


class CommunityMember(CommunityMemberBase, table=True):
    __tablename__ = "community_member"
    community_code: str = Field(primary_key=True)
    school_code: str = Field(primary_key=True, sa_type=CHAR(10))


class CommunityMemberCreate(CommunityMemberBase):
    """A school joins (or changes its role): the body of PUT …/members/{school_code}. Role lead makes it
    the community's lead school. joined_on defaults to today for a school that joins."""


class CommunityMemberPublic(CommunityMemberBase):
    community_code: str
    school_code: str


class CommunityMemberRow(CommunityMemberPublic):
    school_name: str | None = None


class CommunityRow(CommunityPublic):
    members: list[CommunityMemberRow] = []


# -- accounts --------------------------------------------------------------------------------------
class AppUserBase(SQLModel):
    display_name: Name
    role: Role = Field(sa_type=Text)
    scope_level: Level = Field(sa_type=Text)
    scope_code: Code


class AppUser(AppUserBase, table=True):
    __tablename__ = "app_user"
    username: str = Field(primary_key=True)
    password_hash: str
    disabled: bool = Field(default=False, sa_column_kwargs={"server_default": "false"})
    created_at: datetime | None = _now_column()
    password_set_at: datetime | None = _now_column()
    must_change_password: bool = Field(default=False, sa_column_kwargs={"server_default": "false"})
    created_by: str | None = None


class AppUserCreate(AppUserBase):
    username: Username
    password: Password | None = Field(None, description="left out: one is generated and answered once")


class AppUserUpdate(SQLModel):
    display_name: Name = None
    role: Role = None
    scope_level: Level = None
    scope_code: Code = None
    disabled: StrictBool = None


class AppUserPublic(AppUserBase):
    username: str
    disabled: bool
    must_change_password: bool
    created_at: datetime
    password_set_at: datetime
    created_by: str | None


class AppUserRow(AppUserPublic):
    scope_name: str | None = None


class AppUserCreated(AppUserPublic):
    initial_password: str | None = Field(None, description="the generated password, shown this once "
                                                           "(null when the administrator chose one)")


class PasswordResetIn(BaseModel):
    password: Password | None = pydantic.Field(None, description="left out: one is generated and answered once")


class PasswordReset(BaseModel):
    password: str | None = pydantic.Field(description="the generated password, shown this once (null when given)")


# -- operations teams ------------------------------------------------------------------------------
class OpsTeamBase(SQLModel):
    name: Name
    scope_level: Level = Field(sa_type=Text)
    scope_code: Code
    webhook_url: WebhookUrl | None = None
    email: Email | None = None
    mqtt_topic: OpsTopic | None = None


class OpsTeam(OpsTeamBase, table=True):
    __tablename__ = "ops_team"
    id: int | None = Field(default=None, primary_key=True, sa_type=BigInteger)


class OpsTeamCreate(OpsTeamBase):
    pass


class OpsTeamUpdate(SQLModel):
    name: Name = None
    scope_level: Level = None
    scope_code: Code = None
    webhook_url: WebhookUrl | None = None
    email: Email | None = None
    mqtt_topic: OpsTopic | None = None


class OpsTeamPublic(OpsTeamBase):
    id: int


# -- what happened ---------------------------------------------------------------------------------
class AuditLog(SQLModel, table=True):
    """Who did what to what (every write through the API)."""

    __tablename__ = "audit_log"
    id: int | None = Field(default=None, primary_key=True, sa_type=BigInteger)
    at: datetime | None = _now_column()
    username: str
    action: str
    target: str
    detail: dict = Field(default_factory=dict, sa_type=JSONB, sa_column_kwargs={"server_default": "{}"})


class RegistryHistoryBase(SQLModel):
    entity: HistoryEntity = Field(sa_type=Text)
    key: str
    change: HistoryChange = Field(sa_type=Text)
    before: dict | None = Field(default=None, sa_type=JSONB)
    after: dict | None = Field(default=None, sa_type=JSONB)
    changed_by: str
    source: HistorySource = Field(sa_type=Text)


class RegistryHistory(RegistryHistoryBase, table=True):
    """Every move, retirement, return, join, leave, disable and enable in the registry (sql/029)."""

    __tablename__ = "registry_history"
    id: int | None = Field(default=None, primary_key=True, sa_type=BigInteger)
    at: datetime | None = _now_column()


class RegistryHistoryPublic(RegistryHistoryBase):
    id: int
    at: datetime


# -- display links (大屏展示链接, sql/032; issued and revoked by api/auth/display_links.py) ----------
class DisplayLinkBase(SQLModel):
    label: Name
    scope_level: Level = Field(sa_type=Text)
    scope_code: Code
    pages: list[str] = Field(sa_type=JSONB)
    rotate_s: int


class DisplayLink(DisplayLinkBase, table=True):
    """A wall screen's link: its scope and pages; only the SHA-256 of its secret is kept."""

    __tablename__ = "display_link"
    id: int | None = Field(default=None, primary_key=True, sa_type=BigInteger)
    secret_hash: str
    created_by: str
    created_at: datetime | None = _now_column()
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    revoked_by: str | None = None
    last_used_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


TABLE_MODELS = (Province, City, County, School, Device, Community, CommunityMember, AppUser, OpsTeam, AuditLog,
                RegistryHistory, DisplayLink)
