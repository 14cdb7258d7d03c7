"""The registry's administration: users, schools, devices, communities and operations teams,
each bounded by the administrator's own scope, every write audited and kept in the history.

Scope. `scope_codes(admin, level)` is the set form of `api.scopes.access.resolve`: the codes of
every scope of a level that the administrator may open (tests/api/test_admin_scope.py checks that
the two agree for every level). Whatever lies outside is answered 404 when it is read or changed
(its existence is not revealed) and 403 when a create or a move would put something there.

Record. Every write adds an `audit_log` row (`admin.school.update`…, detail {"before", "after"}:
the entity's Public dump, never a password hash) and, for the registry's entities, a
`registry_history` row with what kind of change it was, in the same transaction as the write.
`source` says through what it came ('admin' here; the importer passes 'import').
"""

from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import CHAR, and_, case, cast, false, func, literal, or_, text, true
from sqlmodel import Session, SQLModel, col, select

from api.auth import policy
from api.auth.models import User
from api.registry.models import (
    AppUser,
    AppUserCreate,
    AppUserCreated,
    AppUserPublic,
    AppUserRow,
    AppUserUpdate,
    AuditLog,
    City,
    Community,
    CommunityCreate,
    CommunityMember,
    CommunityMemberCreate,
    CommunityMemberPublic,
    CommunityMemberRow,
    CommunityPublic,
    CommunityRow,
    CommunityUpdate,
    County,
    Device,
    DeviceCreate,
    DevicePublic,
    DeviceRegistered,
    DeviceRow,
    DeviceUpdate,
    MqttCredentials,
    OpsTeam,
    OpsTeamCreate,
    OpsTeamPublic,
    OpsTeamUpdate,
    Page,
    PasswordReset,
    Province,
    RegistryHistory,
    RegistryHistoryPublic,
    School,
    SchoolCreate,
    SchoolPublic,
    SchoolRow,
    SchoolUpdate,
)
from core.contract import TOPIC_ROOT
from core.credentials import device_password
from core.scope import ADMINISTRATIVE, LEVELS
from core.security import hash_password
from core.settings import parse_mqtt_url, platform_settings, school_zone

TABLES: dict[str, Any] = {"province": Province, "city": City, "county": County, "school": School,
                          "community": Community}
PROVISIONING_MAX_ROWS = 20_000  # one sheet; a province's whole fleet is asked for school by school or by vendor
SELF_FIELDS = {"role", "scope_level", "scope_code", "disabled"}


# -- scope ------------------------------------------------------------------------------------------
def scope_codes(admin: User, level: str) -> Any | None:
    """The codes of the scopes at `level` that lie inside the administrator's scope (a subquery);
    None when none can (a county above a school administrator, a city inside a community)."""
    mine, code = admin.scope_level, admin.scope_code
    if mine == "community":
        if level == "community":
            return select(Community.code).where(Community.code == code).correlate(None)
        if level == "school":
            return select(CommunityMember.school_code).where(CommunityMember.community_code == code).correlate(None)
        return None
    if level == "community":  # a community lies in its lead school's county
        counties = scope_codes(admin, "county")
        return None if counties is None else (
            select(Community.code).where(col(Community.county_code).in_(counties)).correlate(None))
    if level not in ADMINISTRATIVE or ADMINISTRATIVE.index(level) < ADMINISTRATIVE.index(mine):
        return None
    table = TABLES[level]
    column = table.code if level == mine else getattr(table, f"{mine}_code")
    return select(table.code).where(column == code).correlate(None)


def _in(value: Any, admin: User, level: str) -> Any:
    """SQL: the code `value` (a column or a value) names a `level` scope inside the administrator's."""
    codes = scope_codes(admin, level)
    if codes is None:
        return false()
    return (value if hasattr(value, "in_") else literal(value)).in_(codes)


def within(admin: User, level: Any, code: Any) -> Any:
    """SQL: the scope (level, code), columns or values, lies inside the administrator's scope."""
    if isinstance(level, str):
        return _in(code, admin, level)
    return or_(false(), *(and_(level == lv, _in(code, admin, lv)) for lv in LEVELS))


def inside(session: Session, admin: User, level: str, code: str) -> bool:
    """True when the scope (level, code) exists and lies inside the administrator's scope."""
    return bool(session.exec(select(within(admin, level, code))).one())


def _require_inside(session: Session, admin: User, level: str, code: str) -> None:
    if not inside(session, admin, level, code):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{level} {code} lies outside your scope (or does not exist)")


def _one(session: Session, query: Any, what: str) -> Any:
    """The row the query finds, locked for this write; 404 "no such … in your scope" otherwise."""
    row = session.exec(query.with_for_update()).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no such {what} in your scope")
    return row


def _conflict(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, reason)


# -- record -----------------------------------------------------------------------------------------
def dump(row: SQLModel | None, public: type[SQLModel]) -> dict | None:
    """The row as the API shows it (JSON values), for answers and for the audit log."""
    return None if row is None else public.model_validate(row).model_dump(mode="json")


def record(session: Session, actor: User, action: str, target: str, before: dict | None, after: dict | None, *,
           entity: str | None = None, change: str | None = None, source: str = "admin", **extra: Any) -> None:
    """Audit one write (`{source}.{action}`), and keep it in the registry's history when it has a `change`."""
    session.add(AuditLog(username=actor.username, action=f"{source}.{action}", target=target,
                         detail={"before": before, "after": after, **extra}))
    if entity and change:
        session.add(RegistryHistory(entity=entity, key=target, change=change, before=before, after=after,
                                    changed_by=actor.username, source=source))


def _changes(row: SQLModel, update: SQLModel) -> dict[str, Any]:
    """The fields the update sets to something else than the row holds."""
    return {k: v for k, v in update.model_dump(exclude_unset=True).items() if getattr(row, k) != v}


def _apply(session: Session, row: SQLModel, changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        setattr(row, key, value)
    session.add(row)
    session.flush()


def _page(session: Session, query: Any, order: Iterable[Any], limit: int, offset: int,
          row: Callable[[Any], Any]) -> Page:
    total = session.exec(select(func.count()).select_from(query.order_by(None).subquery())).one()
    rows = session.exec(query.order_by(*order).limit(limit).offset(offset)).all()
    return Page(items=[row(r) for r in rows], total=total)


def _matching(q: str | None, *columns: Any) -> Any:
    """SQL: any of the columns contains `q` (any case; % and _ taken literally)."""
    return or_(*(col(c).icontains(q, autoescape=True) for c in columns)) if q else true()


def _today() -> date:
    return datetime.now(school_zone()).date()


# -- users ------------------------------------------------------------------------------------------
def _user_visible(admin: User) -> Any:
    return within(admin, col(AppUser.scope_level), col(AppUser.scope_code))


def _scope_name(level: Any, code: Any) -> Any:
    """SQL: the name of the scope (level, code) of each row."""
    def named(lv: str) -> Any:
        table = TABLES[lv]
        key = cast(code, CHAR(10)) if lv == "school" else code  # the school's key, so its index serves
        return select(table.name).where(table.code == key).scalar_subquery()
    return case(*((level == lv, named(lv)) for lv in LEVELS))


def list_users(session: Session, admin: User, q: str | None, limit: int, offset: int) -> Page:
    """Users whose scope lies inside the administrator's."""
    query = (select(AppUser, _scope_name(AppUser.scope_level, AppUser.scope_code))
             .where(_user_visible(admin), _matching(q, AppUser.username, AppUser.display_name)))
    return _page(session, query, [AppUser.username], limit, offset,
                 lambda r: AppUserRow(**dump(r[0], AppUserPublic), scope_name=r[1]))


def _password(username: str, given: str | None) -> tuple[str, str | None]:
    """(the password to set, the generated one to answer or None); 422 when a given one breaks the policy."""
    if given is None:
        generated = policy.generate(username)
        return generated, generated
    policy.enforce(given, username)
    return given, None


def create_user(session: Session, admin: User, data: AppUserCreate, source: str = "admin") -> AppUserCreated:
    """A new account inside the administrator's scope. Its password, chosen or generated, is known to
    the administrator, so its holder must change it at the first login."""
    _require_inside(session, admin, data.scope_level, data.scope_code)
    if session.get(AppUser, data.username) is not None:
        raise _conflict(f"user {data.username} already exists")
    password, generated = _password(data.username, data.password)
    user = AppUser(**data.model_dump(exclude={"password"}), password_hash=hash_password(password),
                   must_change_password=True, created_by=admin.username)
    _apply(session, user, {})
    after = dump(user, AppUserPublic)
    record(session, admin, "user.create", user.username, None, after, entity="user", change="created", source=source)
    return AppUserCreated(**after, initial_password=generated)


def update_user(session: Session, admin: User, username: str, data: AppUserUpdate,
                source: str = "admin") -> AppUserPublic:
    """Rename, change the role or the scope of, disable or enable a user of the administrator's scope."""
    user = _one(session, select(AppUser).where(AppUser.username == username, _user_visible(admin)), "user")
    changes = _changes(user, data)
    if username == admin.username and changes.keys() & SELF_FIELDS:
        raise _conflict("you cannot disable, demote or move yourself; ask another administrator")
    moved = changes.keys() & {"scope_level", "scope_code"}
    if moved:
        _require_inside(session, admin, changes.get("scope_level", user.scope_level),
                        changes.get("scope_code", user.scope_code))
    if not changes:
        return AppUserPublic(**dump(user, AppUserPublic))
    before = dump(user, AppUserPublic)
    _apply(session, user, changes)
    after = dump(user, AppUserPublic)
    change = ("disabled" if user.disabled else "enabled") if "disabled" in changes else "moved" if moved else "changed"
    record(session, admin, "user.update", username, before, after, entity="user", change=change, source=source)
    return AppUserPublic(**after)


def reset_password(session: Session, admin: User, username: str, given: str | None,
                   source: str = "admin") -> PasswordReset:
    """A new password for a user of the administrator's scope, to be changed at their next login."""
    if username == admin.username:
        raise _conflict("change your own password with POST /api/v1/auth/password")
    user = _one(session, select(AppUser).where(AppUser.username == username, _user_visible(admin)), "user")
    password, generated = _password(username, given)
    before = dump(user, AppUserPublic)
    _apply(session, user, {"password_hash": hash_password(password), "must_change_password": True,
                           "password_set_at": func.now()})
    record(session, admin, "user.password", username, before, dump(user, AppUserPublic), source=source)
    return PasswordReset(password=generated)


# -- schools ----------------------------------------------------------------------------------------
def list_schools(session: Session, admin: User, county: str | None, q: str | None, limit: int,
                 offset: int) -> Page:
    query = (select(School, County.name).join(County, County.code == School.county_code)
             .where(_in(School.code, admin, "school"), _matching(q, School.code, School.name)))
    if county:
        query = query.where(School.county_code == county)
    return _page(session, query, [School.code], limit, offset,
                 lambda r: SchoolRow(**dump(r[0], SchoolPublic), county_name=r[1]))


def _county_of(session: Session, code: str) -> dict[str, str]:
    county = session.get(County, code)
    return {"county_code": county.code, "city_code": county.city_code, "province_code": county.province_code}


def create_school(session: Session, admin: User, data: SchoolCreate, source: str = "admin") -> SchoolPublic:
    """A new school in a county of the administrator's scope."""
    _require_inside(session, admin, "county", data.county_code)
    if session.get(School, data.code) is not None:
        raise _conflict(f"school {data.code} already exists")
    school = School(**data.model_dump() | _county_of(session, data.county_code))
    _apply(session, school, {})
    after = dump(school, SchoolPublic)
    record(session, admin, "school.create", school.code, None, after, entity="school", change="created",
           source=source)
    return SchoolPublic(**after)


def update_school(session: Session, admin: User, code: str, data: SchoolUpdate,
                  source: str = "admin") -> SchoolPublic:
    """Change a school of the administrator's scope; a new county moves it (its city and province follow)."""
    school = _one(session, select(School).where(School.code == code, _in(School.code, admin, "school")), "school")
    changes = _changes(school, data)
    if "county_code" in changes:
        _require_inside(session, admin, "county", changes["county_code"])
        changes |= _county_of(session, changes["county_code"])
    if not changes:
        return SchoolPublic(**dump(school, SchoolPublic))
    before = dump(school, SchoolPublic)
    _apply(session, school, changes)
    after = dump(school, SchoolPublic)
    record(session, admin, "school.update", code, before, after, entity="school",
           change="moved" if "county_code" in changes else "changed", source=source)
    if "county_code" in changes:  # the communities it leads are where their lead is (as an import does)
        for community in session.exec(select(Community).where(Community.lead_school_code == code)).all():
            _change_community(session, admin, community, {"county_code": changes["county_code"]}, source)
    return SchoolPublic(**after)


# -- devices ----------------------------------------------------------------------------------------
def _devices(admin: User) -> Any:
    return select(Device, School.name).join(School, School.code == Device.school_code).where(
        _in(Device.school_code, admin, "school"))


def list_devices(session: Session, admin: User, school: str | None, kind: str | None, retired: bool,
                 q: str | None, limit: int, offset: int) -> Page:
    """Devices in service (or, with retired, the retired ones) at schools of the administrator's scope."""
    query = _devices(admin).where(col(Device.retired_at).is_not(None) if retired else col(Device.retired_at).is_(None),
                                  _matching(q, Device.id, Device.room, Device.vendor, Device.model))
    if school:
        query = query.where(Device.school_code == school)
    if kind:
        query = query.where(Device.kind == kind)
    return _page(session, query, [Device.id], limit, offset,
                 lambda r: DeviceRow(**dump(r[0], DevicePublic), school_name=r[1]))


def broker_url() -> str | None:
    """The broker as devices reach it: COCKPIT_MQTT_PUBLIC_URL, else COCKPIT_MQTT_URL (credentials dropped)."""
    settings = platform_settings()
    url = settings.mqtt_public_url or settings.mqtt_url
    if not url:
        return None
    broker = parse_mqtt_url(url)
    return f"{'mqtts' if broker.tls else 'mqtt'}://{broker.host}:{broker.port}"


def credentials(device_id: str) -> MqttCredentials | None:
    """The device's broker account (its password derived from the provisioning secret); None without a secret."""
    settings = platform_settings()
    if settings.device_secret is None:
        return None
    url = broker_url()
    broker = parse_mqtt_url(url) if url else None
    return MqttCredentials(username=device_id,
                           password=device_password(settings.device_secret.get_secret_value(), device_id),
                           host=broker.host if broker else None, port=broker.port if broker else None,
                           tls=bool(broker and broker.tls), topic_prefix=f"{TOPIC_ROOT}/{device_id}/")


NO_SECRET_NOTE = ("no provisioning secret is configured (COCKPIT_DEVICE_SECRET), so the device's MQTT password "
                  "cannot be given here; it is registered all the same")


def register_device(session: Session, admin: User, data: DeviceCreate, source: str = "admin") -> DeviceRegistered:
    """A new device at a school of the administrator's scope, with what it logs in to the broker with."""
    _require_inside(session, admin, "school", data.school_code)
    existing = session.get(Device, data.id)
    if existing is not None:
        raise _conflict(f"device {data.id} is registered already" + (
            f" and retired: bring it back with POST /api/v1/admin/devices/{data.id}/return"
            if existing.retired_at is not None else ""))
    device = Device(**data.model_dump())
    _apply(session, device, {})
    after = dump(device, DevicePublic)
    record(session, admin, "device.register", device.id, None, after, entity="device", change="created",
           source=source)
    mqtt = credentials(device.id)
    return DeviceRegistered(**after, mqtt=mqtt, note=None if mqtt else NO_SECRET_NOTE)


def _device(session: Session, admin: User, device_id: str) -> Device:
    return _one(session, select(Device).where(Device.id == device_id, _in(Device.school_code, admin, "school")),
                "device")


def update_device(session: Session, admin: User, device_id: str, data: DeviceUpdate,
                  source: str = "admin") -> DevicePublic:
    """Change a device in service; another school or room is a move."""
    device = _device(session, admin, device_id)
    if device.retired_at is not None:
        raise _conflict(f"device {device_id} is retired: bring it back first")
    changes = _changes(device, data)
    if "school_code" in changes:
        _require_inside(session, admin, "school", changes["school_code"])
    if not changes:
        return DevicePublic(**dump(device, DevicePublic))
    before = dump(device, DevicePublic)
    _apply(session, device, changes)
    after = dump(device, DevicePublic)
    record(session, admin, "device.update", device_id, before, after, entity="device",
           change="moved" if changes.keys() & {"school_code", "room"} else "changed", source=source)
    return DevicePublic(**after)


_OPEN_ALERTS = text("SELECT count(*) FROM alert WHERE device_id = :device AND state <> 'resolved'")



def retire_device(session: Session, admin: User, device_id: str, reason: str, source: str = "admin") -> DevicePublic:
    """Take a device out of service: it leaves the `device` view (so the broker's accounts, the patrol and
    the figures) and keeps its readings; the database resolves its open alerts ('device retired', sql/029's
    trigger), so the teams told of them are told they are over. The audit says how many there were."""
    device = _device(session, admin, device_id)
    if device.retired_at is not None:
        raise _conflict(f"device {device_id} is retired already")
    before = dump(device, DevicePublic)
    resolved = session.exec(_OPEN_ALERTS.bindparams(device=device_id)).scalar_one()
    _apply(session, device, {"retired_at": func.now(), "retired_reason": reason})
    after = dump(device, DevicePublic)
    record(session, admin, "device.retire", device_id, before, after, entity="device", change="retired",
           source=source, alerts_resolved=resolved)
    return DevicePublic(**after)


def return_device(session: Session, admin: User, device_id: str, source: str = "admin") -> DevicePublic:
    """Bring a retired device back into service at its school."""
    device = _device(session, admin, device_id)
    if device.retired_at is None:
        raise _conflict(f"device {device_id} is in service")
    before = dump(device, DevicePublic)
    _apply(session, device, {"retired_at": None, "retired_reason": None})
    after = dump(device, DevicePublic)
    record(session, admin, "device.return", device_id, before, after, entity="device", change="returned",
           source=source)
    return DevicePublic(**after)


PROVISIONING_COLUMNS = ("设备编号", "设备类型", "学校标识码", "学校名称", "教室", "厂商", "型号", "MQTT用户名",
                        "MQTT密码", "主题前缀", "服务器")


def provisioning_rows(session: Session, admin: User, school: str | None, vendor: str | None) -> list[tuple]:
    """One row per device in service of the scope (PROVISIONING_COLUMNS), with its broker account; the
    hand-out is audited, since it holds passwords. 422 past PROVISIONING_MAX_ROWS."""
    query = _devices(admin).where(col(Device.retired_at).is_(None))
    if school:
        query = query.where(Device.school_code == school)
    if vendor:
        query = query.where(Device.vendor == vendor)
    found = session.exec(query.order_by(Device.school_code, Device.id).limit(PROVISIONING_MAX_ROWS + 1)).all()
    if len(found) > PROVISIONING_MAX_ROWS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"more than {PROVISIONING_MAX_ROWS} devices: ask for one school or one vendor at a time")
    server = broker_url()
    rows = []
    for device, school_name in found:
        mqtt = credentials(device.id)
        rows.append((device.id, device.kind, device.school_code, school_name, device.room, device.vendor,
                     device.model, device.id, mqtt.password if mqtt else None, f"{TOPIC_ROOT}/{device.id}/", server))
    record(session, admin, "device.provisioning", f"{len(rows)} devices", None, None, school=school, vendor=vendor,
           passwords=platform_settings().device_secret is not None)
    return rows


# -- communities ------------------------------------------------------------------------------------
def _community_rows(session: Session, communities: list[Community]) -> list[CommunityRow]:
    codes = [c.code for c in communities]
    members: dict[str, list[CommunityMemberRow]] = {code: [] for code in codes}
    for member, name in session.exec(
            select(CommunityMember, School.name).join(School, School.code == CommunityMember.school_code)
            .where(col(CommunityMember.community_code).in_(codes))
            .order_by(CommunityMember.community_code, CommunityMember.role, CommunityMember.school_code)):
        members[member.community_code].append(CommunityMemberRow(**dump(member, CommunityMemberPublic),
                                                                 school_name=name))
    return [CommunityRow(**dump(c, CommunityPublic), members=members[c.code]) for c in communities]


def list_communities(session: Session, admin: User, q: str | None, limit: int, offset: int) -> Page:
    query = select(Community).where(_in(Community.code, admin, "community"),
                                    _matching(q, Community.code, Community.name))
    found = _page(session, query, [Community.code], limit, offset, lambda r: r)
    return Page(items=_community_rows(session, found.items), total=found.total)


def _community(session: Session, admin: User, code: str) -> Community:
    return _one(session, select(Community).where(Community.code == code, _in(Community.code, admin, "community")),
                "community")


def _put_member(session: Session, actor: User, community: str, school: str, role: str, joined_on: date | None,
                source: str) -> None:
    """The school joins the community in this role, or takes it (and joined_on, if given)."""
    key = f"{community}/{school}"
    member = session.get(CommunityMember, (community, school))
    if member is None:
        member = CommunityMember(community_code=community, school_code=school, role=role,
                                 joined_on=joined_on or _today())
        _apply(session, member, {})
        record(session, actor, "community.member.join", key, None, dump(member, CommunityMemberPublic),
               entity="community_member", change="joined", source=source)
        return
    changes = {k: v for k, v in (("role", role), ("joined_on", joined_on)) if v is not None and getattr(member, k) != v}
    if changes:
        before = dump(member, CommunityMemberPublic)
        _apply(session, member, changes)
        record(session, actor, "community.member.update", key, before, dump(member, CommunityMemberPublic),
               entity="community_member", change="changed", source=source)


def _change_community(session: Session, actor: User, community: Community, changes: dict[str, Any], source: str,
                      joined_on: date | None = None) -> None:
    """Apply the changes; a new lead school takes the lead's membership (the previous one stays a member)
    and brings the community into its county."""
    before = dump(community, CommunityPublic)
    lead = changes.get("lead_school_code")
    if lead is not None:
        for old in session.exec(select(CommunityMember).where(
                CommunityMember.community_code == community.code, CommunityMember.role == "lead",
                CommunityMember.school_code != lead)).all():
            _put_member(session, actor, community.code, old.school_code, "member", None, source)
        _put_member(session, actor, community.code, lead, "lead", joined_on, source)
        changes["county_code"] = session.get(School, lead).county_code
    changes = {k: v for k, v in changes.items() if getattr(community, k) != v}
    if changes:
        _apply(session, community, changes)
        record(session, actor, "community.update", community.code, before, dump(community, CommunityPublic),
               entity="community", change="moved" if "county_code" in changes else "changed", source=source)


def create_community(session: Session, admin: User, data: CommunityCreate, source: str = "admin") -> CommunityRow:
    """A new community led by a school of the administrator's scope, in the lead's county (which must lie
    inside the scope too: a school's or a community's administrator creates none)."""
    _require_inside(session, admin, "school", data.lead_school_code)
    county = session.get(School, data.lead_school_code).county_code
    _require_inside(session, admin, "county", county)
    if session.get(Community, data.code) is not None:
        raise _conflict(f"community {data.code} already exists")
    community = Community(**data.model_dump(), county_code=county)
    _apply(session, community, {})
    record(session, admin, "community.create", community.code, None, dump(community, CommunityPublic),
           entity="community", change="created", source=source)
    _put_member(session, admin, community.code, data.lead_school_code, "lead", data.founded_on, source)
    return _community_rows(session, [community])[0]


def update_community(session: Session, admin: User, code: str, data: CommunityUpdate,
                     source: str = "admin") -> CommunityRow:
    community = _community(session, admin, code)
    changes = _changes(community, data)
    if "lead_school_code" in changes:
        _require_inside(session, admin, "school", changes["lead_school_code"])
    _change_community(session, admin, community, changes, source)
    return _community_rows(session, [community])[0]


def put_member(session: Session, admin: User, code: str, school: str, data: CommunityMemberCreate,
               source: str = "admin") -> CommunityRow:
    """A school of the administrator's scope joins the community, or changes its role (lead: it leads)."""
    community = _community(session, admin, code)
    _require_inside(session, admin, "school", school)
    if data.role == "lead" and community.lead_school_code != school:
        _change_community(session, admin, community, {"lead_school_code": school}, source, data.joined_on)
    elif data.role == "member" and community.lead_school_code == school:
        raise _conflict("the lead school stays the lead: make another school the lead first")
    else:
        _put_member(session, admin, code, school, data.role, data.joined_on, source)
    return _community_rows(session, [community])[0]


def remove_member(session: Session, admin: User, code: str, school: str, source: str = "admin") -> CommunityRow:
    """The school leaves the community (the lead cannot: another school must lead first)."""
    community = _community(session, admin, code)
    member = session.get(CommunityMember, (code, school))
    if member is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"school {school} is not a member of community {code}")
    if member.role == "lead" or community.lead_school_code == school:
        raise _conflict("the lead school cannot leave: make another school the lead first")
    before = dump(member, CommunityMemberPublic)
    session.delete(member)
    session.flush()
    record(session, admin, "community.member.leave", f"{code}/{school}", before, None, entity="community_member",
           change="left", source=source)
    return _community_rows(session, [community])[0]


# -- operations teams -------------------------------------------------------------------------------
def _team_visible(admin: User) -> Any:
    return within(admin, col(OpsTeam.scope_level), col(OpsTeam.scope_code))


def list_teams(session: Session, admin: User, q: str | None, limit: int, offset: int) -> Page:
    query = select(OpsTeam).where(_team_visible(admin), _matching(q, OpsTeam.name, OpsTeam.scope_code))
    return _page(session, query, [OpsTeam.id], limit, offset, lambda r: OpsTeamPublic(**dump(r, OpsTeamPublic)))


def _scope_free(session: Session, level: str, code: str) -> None:
    taken = session.exec(select(OpsTeam.id).where(OpsTeam.scope_level == level, OpsTeam.scope_code == code)).first()
    if taken is not None:
        raise _conflict(f"{level} {code} has an operations team already (id {taken})")


def create_team(session: Session, admin: User, data: OpsTeamCreate, source: str = "admin") -> OpsTeamPublic:
    """A team owning a scope inside the administrator's (one team per scope)."""
    _require_inside(session, admin, data.scope_level, data.scope_code)
    _scope_free(session, data.scope_level, data.scope_code)
    team = OpsTeam(**data.model_dump())
    _apply(session, team, {})
    after = dump(team, OpsTeamPublic)
    record(session, admin, "ops_team.create", str(team.id), None, after, source=source)
    return OpsTeamPublic(**after)


def update_team(session: Session, admin: User, team_id: int, data: OpsTeamUpdate,
                source: str = "admin") -> OpsTeamPublic:
    team = _one(session, select(OpsTeam).where(OpsTeam.id == team_id, _team_visible(admin)), "operations team")
    changes = _changes(team, data)
    if changes.keys() & {"scope_level", "scope_code"}:
        level, code = changes.get("scope_level", team.scope_level), changes.get("scope_code", team.scope_code)
        _require_inside(session, admin, level, code)
        _scope_free(session, level, code)
    if not changes:
        return OpsTeamPublic(**dump(team, OpsTeamPublic))
    before = dump(team, OpsTeamPublic)
    _apply(session, team, changes)
    after = dump(team, OpsTeamPublic)
    record(session, admin, "ops_team.update", str(team_id), before, after, source=source)
    return OpsTeamPublic(**after)


# -- history ----------------------------------------------------------------------------------------
def _history_visible(admin: User) -> Any:
    """SQL: a history row names, before or after the change, something inside the administrator's scope:
    a school (a device's or a member's, or the school itself), a county (a school's or a community's),
    a community, or a user's scope. A move out of the scope stays visible to the scope it left."""
    h = RegistryHistory
    seen = []
    for state in (col(h.before), col(h.after)):
        def field(name: str, state=state) -> Any:
            return state[name].astext
        seen += [_in(field("school_code"), admin, "school"), _in(field("county_code"), admin, "county"),
                 _in(field("community_code"), admin, "community"),
                 and_(h.entity == "school", _in(field("code"), admin, "school")),
                 and_(h.entity == "community", _in(field("code"), admin, "community")),
                 and_(h.entity == "user", within(admin, field("scope_level"), field("scope_code")))]
    return or_(*seen)


def list_history(session: Session, admin: User, entity: str | None, key: str | None, limit: int,
                 offset: int) -> Page:
    """Registry history within the administrator's scope, newest first."""
    query = select(RegistryHistory).where(_history_visible(admin))
    if entity:
        query = query.where(RegistryHistory.entity == entity)
    if key:
        query = query.where(RegistryHistory.key == key)
    return _page(session, query, [col(RegistryHistory.at).desc(), col(RegistryHistory.id).desc()], limit, offset,
                 lambda r: RegistryHistoryPublic(**dump(r, RegistryHistoryPublic)))
