"""The registry's administration (`/api/v1/admin`): users, schools, devices, communities, operations
teams and the history, for administrators only (any other role: 403).

An administrator's own scope bounds everything (api/registry/service.py, `scope_codes`): what lies
outside it is answered 404 when read or changed, and 403 when a create or a move would put
something there. What that means per kind of administrator:

- province, city, county: everything of their area — its schools (created in and moved between
  its counties), their devices, the communities whose lead school's county is theirs, the users and
  operations teams whose scope lies inside.
- school: their school — its details (not its county: a move leaves the scope), its devices, its
  users and its team; they create no school and no community, since either would lie above them.
- community (教联体): the community and its member schools — the community's details and members'
  roles, the members' details and devices, the users and teams of the community or of a member;
  a school joins only from inside the scope (so a city or county administrator adds new members),
  and they create no school and no community.

Nobody disables, demotes or moves themselves (409: another administrator must), nor resets their
own password here (they change it at /api/v1/auth/password).
"""

import io
from typing import Annotated

import pandas
from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from starlette.convertors import Convertor, register_url_convertor

from api.deps import role
from api.errors import problems
from api.export import XLSX_MEDIA_TYPE
from api.inputs import INT_MAX, DbText
from api.registry import service
from api.registry.models import (
    AppUserCreate,
    AppUserCreated,
    AppUserPublic,
    AppUserRow,
    AppUserUpdate,
    CommunityCreate,
    CommunityMemberCreate,
    CommunityRow,
    CommunityUpdate,
    DeviceCreate,
    DeviceKind,
    DevicePublic,
    DeviceRegistered,
    DeviceRetire,
    DeviceRow,
    DeviceUpdate,
    HistoryEntity,
    OpsTeamCreate,
    OpsTeamPublic,
    OpsTeamUpdate,
    Page,
    PasswordReset,
    PasswordResetIn,
    RegistryHistoryPublic,
    SchoolCreate,
    SchoolPublic,
    SchoolRow,
    SchoolUpdate,
)
from api.registry.session import DbSession
from core.contract import DEVICE_ID_PATTERN

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


class _DeviceIdSegment(Convertor):
    """A path segment that can be a device id, so that /devices/provisioning.xlsx is never taken for one
    (another method on it answers 405, not a 422 about a malformed id)."""

    regex = DEVICE_ID_PATTERN.removeprefix("^").removesuffix("$")

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("device_id", _DeviceIdSegment())

Admin = role({"admin"}, "administer the registry")
Username = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\x00/]+$", examples=["zengdu"])]
SchoolCode = Annotated[str, Path(pattern=r"^[0-9]{10}$", examples=["4213030001"])]
DeviceId = Annotated[str, Path(pattern=DEVICE_ID_PATTERN, examples=["B4213030001-001"])]
CommunityCode = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$", examples=["C421303001"])]
TeamId = Annotated[int, Path(ge=1, le=2**62)]
Q = Annotated[DbText | None, Query(max_length=100, description="text the code, name or id contains (any case)")]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=INT_MAX)]
READ, WRITE = problems(403), problems(403, 409)


# -- users ------------------------------------------------------------------------------------------
@router.get("/users", response_model=Page[AppUserRow], summary="Users inside your scope", responses=READ)
def list_users(admin: Admin, session: DbSession, q: Q = None, limit: Limit = 100, offset: Offset = 0) -> Page:
    """Users whose scope lies inside the administrator's, by username; `q` matches username or name."""
    return service.list_users(session, admin, q, limit, offset)


@router.post("/users", response_model=AppUserCreated, status_code=201, summary="Create a user", responses=WRITE)
def create_user(body: AppUserCreate, admin: Admin, session: DbSession) -> AppUserCreated:
    """A user with a scope inside yours (403 otherwise). Without `password` one is generated and answered
    once as `initial_password`; either way the user must change it at the first login. A chosen password
    must pass the password policy (422 with the reason)."""
    return service.create_user(session, admin, body)


@router.patch("/users/{username}", response_model=AppUserPublic, summary="Change a user", responses=WRITE)
def update_user(username: Username, body: AppUserUpdate, admin: Admin, session: DbSession) -> AppUserPublic:
    """Name, role, scope (inside yours) or disabled; never your own role, scope or disabled (409)."""
    return service.update_user(session, admin, username, body)


@router.post("/users/{username}/password", response_model=PasswordReset, summary="Reset a user's password",
             responses=WRITE)
def reset_password(username: Username, body: PasswordResetIn, admin: Admin, session: DbSession) -> PasswordReset:
    """Set the given password (policy-checked) or a generated one (answered once); the user must change
    it at the next login, and every session of theirs is held until they do."""
    return service.reset_password(session, admin, username, body.password)


# -- schools ----------------------------------------------------------------------------------------
@router.get("/schools", response_model=Page[SchoolRow], summary="Schools inside your scope", responses=READ)
def list_schools(admin: Admin, session: DbSession,
                 county: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,32}$")] = None,
                 q: Q = None, limit: Limit = 100, offset: Offset = 0) -> Page:
    """By code; `county` narrows to one county, `q` matches code or name."""
    return service.list_schools(session, admin, county, q, limit, offset)


@router.post("/schools", response_model=SchoolPublic, status_code=201, summary="Create a school", responses=WRITE)
def create_school(body: SchoolCreate, admin: Admin, session: DbSession) -> SchoolPublic:
    """A school in a county inside your scope (403 otherwise); its city and province are the county's."""
    return service.create_school(session, admin, body)


@router.patch("/schools/{school_code}", response_model=SchoolPublic, summary="Change or move a school",
              responses=WRITE)
def update_school(school_code: SchoolCode, body: SchoolUpdate, admin: Admin, session: DbSession) -> SchoolPublic:
    """Another `county_code` moves the school (to a county inside your scope; kept in the history)."""
    return service.update_school(session, admin, school_code, body)


# -- devices ----------------------------------------------------------------------------------------
@router.get("/devices", response_model=Page[DeviceRow], summary="Devices inside your scope", responses=READ)
def list_devices(admin: Admin, session: DbSession,
                 school: Annotated[str | None, Query(pattern=r"^[0-9]{10}$")] = None, kind: DeviceKind | None = None,
                 retired: Annotated[bool, Query(description="true: the retired devices instead")] = False,
                 q: Q = None, limit: Limit = 100, offset: Offset = 0) -> Page:
    """Devices in service by id (or the retired ones); `q` matches id, room, vendor or model."""
    return service.list_devices(session, admin, school, kind, retired, q, limit, offset)


@router.post("/devices", response_model=DeviceRegistered, status_code=201, summary="Register a device",
             responses=WRITE)
def register_device(body: DeviceCreate, admin: Admin, session: DbSession) -> DeviceRegistered:
    """A device at a school inside your scope, answered with its MQTT account (`mqtt`: username, password,
    broker, topic prefix). Without a configured provisioning secret, `mqtt` is null and `note` says why.
    An id registered before answers 409 (a retired one is brought back with …/return)."""
    return service.register_device(session, admin, body)


@router.get("/devices/provisioning.xlsx", response_class=Response, summary="Provisioning sheet of devices",
            responses={**READ, **problems(422), 200: {
                "description": "an XLSX workbook: 设备编号, 设备类型, 学校标识码, 学校名称, 教室, 厂商, 型号, MQTT用户名, "
                               "MQTT密码, 主题前缀, 服务器",
                "content": {XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}})
def provisioning_sheet(admin: Admin, session: DbSession,
                       school: Annotated[str | None, Query(pattern=r"^[0-9]{10}$")] = None,
                       vendor: Annotated[DbText | None, Query(min_length=1, max_length=64)] = None) -> Response:
    """Every device in service inside your scope (of one school, of one vendor) with its MQTT account, for
    the installers. It holds passwords: the download is audited and never cached."""
    frame = pandas.DataFrame(service.provisioning_rows(session, admin, school, vendor),
                             columns=list(service.PROVISIONING_COLUMNS))
    out = io.BytesIO()
    frame.to_excel(out, index=False, sheet_name="设备开通", engine="openpyxl")
    return Response(out.getvalue(), media_type=XLSX_MEDIA_TYPE,
                    headers={"Content-Disposition": 'attachment; filename="provisioning.xlsx"',
                             "Cache-Control": "no-store"})


@router.patch("/devices/{device_id:device_id}", response_model=DevicePublic, summary="Change or move a device",
              responses=WRITE)
def update_device(device_id: DeviceId, body: DeviceUpdate, admin: Admin, session: DbSession) -> DevicePublic:
    """Another school (inside your scope) or room moves the device (kept in the history); 409 when retired."""
    return service.update_device(session, admin, device_id, body)


@router.post("/devices/{device_id:device_id}/retire", response_model=DevicePublic, summary="Retire a device",
             responses=WRITE)
def retire_device(device_id: DeviceId, body: DeviceRetire, admin: Admin, session: DbSession) -> DevicePublic:
    """Out of service: gone from every figure, the patrol and the broker's accounts; its readings stay, its
    open alerts are resolved ('device retired'). 409 when retired already."""
    return service.retire_device(session, admin, device_id, body.reason)


@router.post("/devices/{device_id:device_id}/return", response_model=DevicePublic, summary="Bring a retired device back",
             responses=WRITE)
def return_device(device_id: DeviceId, admin: Admin, session: DbSession) -> DevicePublic:
    """Back in service at its school (move it afterwards if it went elsewhere); 409 when in service."""
    return service.return_device(session, admin, device_id)


# -- communities ------------------------------------------------------------------------------------
@router.get("/communities", response_model=Page[CommunityRow], summary="Communities inside your scope",
            responses=READ)
def list_communities(admin: Admin, session: DbSession, q: Q = None, limit: Limit = 100,
                     offset: Offset = 0) -> Page:
    """By code, each with its member schools (the lead first); `q` matches code or name."""
    return service.list_communities(session, admin, q, limit, offset)


@router.post("/communities", response_model=CommunityRow, status_code=201, summary="Create a community",
             responses=WRITE)
def create_community(body: CommunityCreate, admin: Admin, session: DbSession) -> CommunityRow:
    """Led by a school inside your scope, in its county (which must lie inside your scope too)."""
    return service.create_community(session, admin, body)


@router.patch("/communities/{community_code}", response_model=CommunityRow, summary="Change a community",
              responses=WRITE)
def update_community(community_code: CommunityCode, body: CommunityUpdate, admin: Admin,
                     session: DbSession) -> CommunityRow:
    """A new `lead_school_code` (inside your scope) leads; the previous lead stays a member."""
    return service.update_community(session, admin, community_code, body)


@router.put("/communities/{community_code}/members/{school_code}", response_model=CommunityRow,
            summary="A school joins a community, or changes its role", responses=WRITE)
def put_member(community_code: CommunityCode, school_code: SchoolCode, body: CommunityMemberCreate,
               admin: Admin, session: DbSession) -> CommunityRow:
    """The school (inside your scope) joins as `role`, or takes it; `lead` makes it the community's lead.
    409 when the lead would become a plain member without another lead."""
    return service.put_member(session, admin, community_code, school_code, body)


@router.delete("/communities/{community_code}/members/{school_code}", response_model=CommunityRow,
               summary="A school leaves a community", responses=WRITE)
def remove_member(community_code: CommunityCode, school_code: SchoolCode, admin: Admin,
                  session: DbSession) -> CommunityRow:
    """The membership ends (kept in the history); the lead cannot leave (409). A member school outside your
    scope may leave a community inside it, though only a school inside may join."""
    return service.remove_member(session, admin, community_code, school_code)


# -- operations teams -------------------------------------------------------------------------------
@router.get("/ops-teams", response_model=Page[OpsTeamPublic], summary="Operations teams inside your scope",
            responses=READ)
def list_teams(admin: Admin, session: DbSession, q: Q = None, limit: Limit = 100, offset: Offset = 0) -> Page:
    """By id; `q` matches the name or the scope's code."""
    return service.list_teams(session, admin, q, limit, offset)


@router.post("/ops-teams", response_model=OpsTeamPublic, status_code=201, summary="Create an operations team",
             responses=WRITE)
def create_team(body: OpsTeamCreate, admin: Admin, session: DbSession) -> OpsTeamPublic:
    """The team of a scope inside yours (one per scope: 409 for a second); alerts go to the team of the
    smallest scope around them. `mqtt_topic` lies under edu/ops/."""
    return service.create_team(session, admin, body)


@router.patch("/ops-teams/{team_id}", response_model=OpsTeamPublic, summary="Change an operations team",
              responses=WRITE)
def update_team(team_id: TeamId, body: OpsTeamUpdate, admin: Admin, session: DbSession) -> OpsTeamPublic:
    """Name, scope (inside yours, not another team's), webhook, e-mail or MQTT topic (null clears one)."""
    return service.update_team(session, admin, team_id, body)


# -- history ----------------------------------------------------------------------------------------
@router.get("/history", response_model=Page[RegistryHistoryPublic], summary="Registry history inside your scope",
            responses=READ)
def list_history(admin: Admin, session: DbSession, entity: HistoryEntity | None = None,
                 key: Annotated[DbText | None, Query(min_length=1, max_length=100,
                                                     description="a school or device code, a community code, "
                                                                 "community/school, or a username")] = None,
                 limit: Limit = 100, offset: Offset = 0) -> Page:
    """Moves, retirements, returns, joins, leaves, disables, creations and changes, newest first; a row is
    shown when what it names lies (or lay, before the change) inside your scope."""
    return service.list_history(session, admin, entity, key, limit, offset)
