"""Generate a deterministic Hubei province registry and load it with COPY.

Same scale, seed and school year, same province: every random choice comes from one
random.Random(seed), and nothing depends on today's date. "demo" keeps all 17 real
cities and 103 counties with three schools each (twelve in each county of 随州, the demo's
home city, so its rankings and equity have schools to compare) and at most 12 boards a school; "province" generates ~10,000 schools and ~200,000
devices, one touch board per class. Both carry the policy targets (ops/seed/targets.py),
set on the province; replacing the registry replaces them too.

Demo accounts, all with the password ``demo-password``:

===========  ===========  ==========================================
username     role         scope
===========  ===========  ==========================================
admin        admin        province 420000 (湖北省)
province     manager      province 420000
suizhou      manager      city 421300 (随州市)
wuhan        manager      city 420100 (武汉市)
zengdu       manager      county 421303 (曾都区)
ops-zengdu   operations   county 421303
school       viewer       school: 随州市曾都区实验小学 (2421303001)
community    viewer       community C42130301 (随州市曾都区实验小学教联体)
===========  ===========  ==========================================
"""

import random
from dataclasses import dataclass, field, fields

import psycopg
from psycopg import sql

from core.security import hash_password
from ops.seed import hubei
from ops.seed.calendar import autumn_term, calendar_days
from ops.seed.communities import COMPULSORY, communities
from ops.seed.lessons import lessons
from ops.seed.schools import (
    HOME_CITY,
    County,
    Scale,
    School,
    counties,
    county_schools,
    school_devices,
)
from ops.seed.targets import policy_targets

__all__ = ["COMPULSORY", "DEMO_PASSWORD", "Registry", "RegistryNotEmptyError", "generate", "load", "seed_database"]

DEMO_PASSWORD = "demo-password"
HOME_COUNTY = "421303"  # 曾都区

# Column order of every table's rows, in foreign-key order.
COLUMNS = {
    "province": ("code", "name"),
    "city": ("code", "province_code", "name"),
    "county": ("code", "city_code", "province_code", "name"),
    "school": ("code", "name", "county_code", "city_code", "province_code", "locale", "stage", "classes",
               "students", "teachers", "uplink_mbps", "latitude", "longitude"),
    "community": ("code", "name", "kind", "lead_school_code", "county_code", "founded_on"),
    "community_member": ("community_code", "school_code", "role", "joined_on"),
    "device": ("id", "kind", "school_code", "room", "vendor", "model", "installed_on"),
    "app_user": ("username", "display_name", "password_hash", "role", "scope_level", "scope_code"),
    "ops_team": ("name", "scope_level", "scope_code"),
    "calendar_day": ("day", "is_school_day", "name"),
    "remote_lesson": ("id", "kind", "subject", "main_device_id", "community_code", "weekday", "starts_at",
                      "ends_at", "valid_from", "valid_until"),
    "remote_lesson_receiver": ("lesson_id", "device_id", "class_name"),
    "target": ("scope_level", "scope_code", "figure", "comparator", "value", "deadline", "note", "set_by"),
}
# `device` is the devices in service, a view (sql/029); the rows go into the table beneath it.
_STORED_IN = {"device": "device_all"}


def _table(name: str) -> sql.Identifier:
    return sql.Identifier(_STORED_IN.get(name, name))



class RegistryNotEmptyError(RuntimeError):
    """Seeding was refused because the registry already holds rows."""


@dataclass
class Registry:
    """Rows for every registry table, as tuples in COLUMNS order."""

    province: list[tuple] = field(default_factory=list)
    city: list[tuple] = field(default_factory=list)
    county: list[tuple] = field(default_factory=list)
    school: list[tuple] = field(default_factory=list)
    community: list[tuple] = field(default_factory=list)
    community_member: list[tuple] = field(default_factory=list)
    device: list[tuple] = field(default_factory=list)
    app_user: list[tuple] = field(default_factory=list)
    ops_team: list[tuple] = field(default_factory=list)
    calendar_day: list[tuple] = field(default_factory=list)
    remote_lesson: list[tuple] = field(default_factory=list)
    remote_lesson_receiver: list[tuple] = field(default_factory=list)
    target: list[tuple] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        return {f.name: len(getattr(self, f.name)) for f in fields(self)}


def generate(scale: Scale = "demo", seed: int = 2024, school_year: int = 2026) -> Registry:
    """A whole province registry, its timetable valid for the autumn term of `school_year`."""
    if scale not in ("demo", "province"):
        raise ValueError(f"unknown scale {scale!r}: use demo or province")
    rng = random.Random(seed)
    reg = Registry()
    areas = counties()
    schools = _area(rng, reg, areas, scale)
    communities(rng, reg, schools, areas)
    lessons(rng, reg, schools, autumn_term(school_year), scale)
    reg.calendar_day.extend(calendar_days())
    _users(rng, reg, schools)
    _ops_teams(reg)
    reg.target.extend(policy_targets(hubei.PROVINCE[0], school_year))
    return reg


def _area(rng: random.Random, reg: Registry, areas: list[County], scale: Scale) -> list[School]:
    """Province, cities, counties, schools and devices; returns the schools."""
    province = hubei.PROVINCE[0]
    reg.province.append(hubei.PROVINCE)
    reg.city.extend((code, province, name) for code, name, _ in hubei.CITIES)
    schools: list[School] = []
    for county in areas:
        reg.county.append((county.code, county.city, province, county.name))
        board_vendor = rng.choice(hubei.BOARD_VENDORS)  # boards are bought by county-wide tender
        for school in county_schools(rng, county, scale):
            reg.school.append(school.row(province))
            reg.device.extend(school_devices(rng, school, scale, board_vendor))
            schools.append(school)
    return schools


def _users(rng: random.Random, reg: Registry, schools: list[School]) -> None:
    school = next(s for s in schools if s.county == HOME_COUNTY)
    home_communities = [c for c in reg.community if c[4] == HOME_COUNTY] or \
        [c for c in reg.community if c[4].startswith(HOME_CITY[:4])] or reg.community
    community = home_communities[0]
    for username, display_name, role, level, code in (
        ("admin", "系统管理员", "admin", "province", hubei.PROVINCE[0]),
        ("province", "湖北省教育厅", "manager", "province", hubei.PROVINCE[0]),
        ("suizhou", "随州市教育局", "manager", "city", HOME_CITY),
        ("wuhan", "武汉市教育局", "manager", "city", "420100"),
        ("zengdu", "曾都区教育局", "manager", "county", HOME_COUNTY),
        ("ops-zengdu", "曾都区电教运维中心", "operations", "county", HOME_COUNTY),
        ("school", school.name, "viewer", "school", school.code),
        ("community", community[1], "viewer", "community", community[0]),
    ):
        # A salt from the seed keeps the rows reproducible; these passwords are public anyway.
        digest = hash_password(DEMO_PASSWORD, salt=rng.randbytes(16))
        reg.app_user.append((username, display_name, digest, role, level, code))


def _ops_teams(reg: Registry) -> None:
    """An operations centre (电教运维中心) per city, and the home county's own, which the patrol routes to.

    They have no webhook or e-mail of their own: notices go to the platform's MQTT topic
    until a bureau enters its addresses.
    """
    for code, _province, name in reg.city:
        reg.ops_team.append((f"{name}电教运维中心", "city", code))
    home = next(name for code, _city, _province, name in reg.county if code == HOME_COUNTY)
    reg.ops_team.append((f"{home}电教运维中心", "county", HOME_COUNTY))


def load(conn: psycopg.Connection, reg: Registry) -> None:
    """Write the registry with COPY, in foreign-key order, in the caller's transaction."""
    with conn.cursor() as cur:
        for table, columns in COLUMNS.items():
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                _table(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
            with cur.copy(statement) as copy:
                for row in getattr(reg, table):
                    copy.write_row(row)


def _existing_rows(conn: psycopg.Connection) -> dict[str, int]:
    counts = {}
    for table in COLUMNS:
        statement = sql.SQL("SELECT count(*) FROM {}").format(_table(table))
        counts[table] = conn.execute(statement).fetchone()[0]
    return {table: n for table, n in counts.items() if n}


def _refuse_or_clear(conn: psycopg.Connection, replace: bool) -> None:
    existing = _existing_rows(conn)
    if existing and not replace:
        held = ", ".join(f"{n} {table}" for table, n in existing.items())
        what = f"{existing['school']} schools" if "school" in existing else f"rows ({held})"
        raise RegistryNotEmptyError(f"the registry already has {what}; pass replace=True (cockpit seed --replace) "
                               "to replace it")
    if existing:
        # CASCADE also empties what hangs on the registry by foreign key (device state, commands…).
        conn.execute(sql.SQL("TRUNCATE {} CASCADE").format(sql.SQL(", ").join(map(_table, COLUMNS))))


def seed_database(url: str, scale: Scale = "demo", seed: int = 2024, *, replace: bool = False) -> dict[str, int]:
    """Generate and load a province in one transaction; refuses a non-empty registry unless `replace`."""
    with psycopg.connect(url) as conn:
        with conn.transaction():
            _refuse_or_clear(conn, replace)
            reg = generate(scale, seed)
            load(conn, reg)
        conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(map(_table, COLUMNS))))
    return reg.counts()
