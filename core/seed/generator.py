"""Generate a deterministic province registry and load it with COPY.

Same scale and seed, same province: every random choice comes from one
random.Random(seed). "demo" keeps all real cities and counties with a few schools
each (more in 随州, the demo's home city); "province" generates ~10,000 schools and
~200,000 devices, one touch board per class.
"""

import math
import random
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Literal

import psycopg

from core.security import hash_password
from core.seed import hubei
from core.seed.calendar import calendar_days
from core.seed.communities import communities, lessons

Scale = Literal["demo", "province"]
HOME_CITY = "421300"  # 随州市
DEMO_PASSWORD = "demo-password"
COMPULSORY = {"primary", "junior", "nine_year", "teaching_point"}

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
    "calendar_day": ("day", "is_school_day", "name"),
    "remote_lesson": ("id", "kind", "subject", "main_device_id", "community_code", "weekday", "starts_at",
                      "ends_at", "valid_from", "valid_until"),
    "remote_lesson_receiver": ("lesson_id", "device_id", "class_name"),
}


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
    calendar_day: list[tuple] = field(default_factory=list)
    remote_lesson: list[tuple] = field(default_factory=list)
    remote_lesson_receiver: list[tuple] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        return {f.name: len(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class School:
    """What the generator needs to know of a school after creating it."""

    code: str
    name: str
    county: str
    city: str
    locale: str
    stage: str
    classes: int


def _schools_per_county(scale: Scale, city: str, is_district: bool) -> int:
    if scale == "demo":
        return 4 if city == HOME_CITY else 2
    return 105 if is_district else 85


def _locale(rng: random.Random, is_district: bool) -> str:
    weights = (60, 30, 10) if is_district else (15, 35, 50)
    return rng.choices(("urban", "town", "rural"), weights)[0]


def _stage(rng: random.Random, locale: str) -> str:
    table = {
        "urban": (("primary", 55), ("junior", 25), ("senior", 10), ("nine_year", 10)),
        "town": (("primary", 50), ("junior", 25), ("nine_year", 15), ("senior", 10)),
        "rural": (("primary", 45), ("teaching_point", 35), ("nine_year", 15), ("junior", 5)),
    }[locale]
    return rng.choices([s for s, _ in table], [w for _, w in table])[0]


def _size(rng: random.Random, locale: str, stage: str) -> tuple[int, int, int]:
    """(classes, students, teachers): urban schools larger, teaching points tiny."""
    if stage == "teaching_point":
        classes = rng.randint(1, 3)
        students = min(49, classes * rng.randint(6, 15))
        return classes, students, rng.randint(1, 4)
    lo, hi = {"urban": (18, 48), "town": (9, 24), "rural": (4, 10)}[locale]
    classes = rng.randint(lo, hi)
    per_class = {"urban": 45, "town": 40, "rural": 28}[locale] + rng.randint(-5, 5)
    students = classes * per_class
    return classes, students, max(3, round(students / rng.uniform(13, 17)))


def _uplink(rng: random.Random, locale: str, stage: str) -> int:
    if stage == "teaching_point":
        return rng.choice((50, 100, 100))
    return {"urban": lambda: 1000, "town": lambda: rng.choice((1000, 1000, 300)),
            "rural": lambda: rng.choice((300, 100))}[locale]()


def _school_name(rng: random.Random, county: str, locale: str, stage: str, serial: int) -> str:
    town, village = rng.choice(hubei.TOWNS), rng.choice(hubei.VILLAGES)
    if stage == "teaching_point":
        return f"{county}{town}镇{village}教学点"
    if locale == "urban":
        return {"primary": f"{county}第{serial}小学" if serial > 1 else f"{county}实验小学",
                "junior": f"{county}第{serial}中学", "senior": f"{county}第{serial}高级中学",
                "nine_year": f"{county}{town}九年一贯制学校"}[stage]
    suffix = {"primary": "中心小学" if locale == "town" else f"{village}小学", "junior": "初级中学",
              "senior": "高级中学", "nine_year": "九年一贯制学校"}[stage]
    return f"{county}{town}镇{suffix}"


def _devices(rng: random.Random, reg: Registry, s: School, scale: Scale) -> None:
    boards = min(s.classes, 12) if scale == "demo" else s.classes
    vendor, model = rng.choice(hubei.BOARD_VENDORS)
    installed = date(rng.randint(2019, 2025), rng.randint(1, 12), 1)
    for i in range(boards):
        room = f"{i % 6 + 1}年级({i // 6 + 1})班" if s.stage in ("primary", "teaching_point", "nine_year") \
            else f"{i % 3 + 1}年级({i // 3 + 1})班"
        reg.device.append((f"B{s.code}-{i + 1:03d}", "board", s.code, room, vendor, model, installed))
    share = {"urban": 0.85, "town": 0.6, "rural": 0.12}[s.locale]
    if s.stage != "teaching_point" and (s.classes >= 12 or s.locale == "rural") and rng.random() < share:
        rv, rm = rng.choice(hubei.RECORDER_VENDORS)
        reg.device.append((f"R{s.code}-01", "recorder", s.code, "录播教室", rv, rm, installed))
    gv, gm = rng.choice(hubei.GATEWAY_VENDORS)
    reg.device.append((f"G{s.code}", "gateway", s.code, "网络中心", gv, gm, installed))


def _area(reg: Registry, rng: random.Random, scale: Scale) -> list[School]:
    reg.province.append(hubei.PROVINCE)
    schools: list[School] = []
    for city_code, city_name, (lat, lon), counties in hubei.CITIES:
        reg.city.append((city_code, hubei.PROVINCE[0], city_name))
        for idx, (county_code, county_name) in enumerate(counties):
            reg.county.append((county_code, city_code, hubei.PROVINCE[0], county_name))
            angle = 2 * math.pi * idx / max(1, len(counties))
            clat, clon = lat + 0.25 * math.sin(angle) * (len(counties) > 1), lon + 0.3 * math.cos(angle) * (len(counties) > 1)
            is_district = county_name.endswith("区")
            for serial in range(1, _schools_per_county(scale, city_code, is_district) + 1):
                locale = "urban" if serial == 1 else _locale(rng, is_district)
                stage = "primary" if serial == 1 else _stage(rng, locale)
                if scale == "demo" and serial == 2:
                    locale, stage = "rural", "teaching_point"  # every demo county has one
                classes, students, teachers = _size(rng, locale, stage)
                code = f"1{county_code}{serial:03d}"
                name = _school_name(rng, county_name, locale, stage, serial)
                reg.school.append((code, name, county_code, city_code, hubei.PROVINCE[0], locale, stage, classes,
                                   students, teachers, _uplink(rng, locale, stage),
                                   round(clat + rng.uniform(-0.08, 0.08), 5), round(clon + rng.uniform(-0.08, 0.08), 5)))
                schools.append(School(code, name, county_code, city_code, locale, stage, classes))
    return schools


def generate(scale: Scale = "demo", seed: int = 2024, school_year: int = 2026) -> Registry:
    """A whole province registry; identical for identical arguments."""
    if scale not in ("demo", "province"):
        raise ValueError(f"unknown scale {scale!r}: use demo or province")
    rng = random.Random(seed)
    reg = Registry()
    schools = _area(reg, rng, scale)
    for s in schools:
        _devices(rng, reg, s, scale)
    communities(rng, reg, schools)
    lessons(rng, reg, schools, school_year)
    reg.calendar_day.extend(calendar_days())
    _users(reg, schools)
    return reg


def _users(reg: Registry, schools: list[School]) -> None:
    digest = hash_password(DEMO_PASSWORD)
    zengdu_school = next(s for s in schools if s.county == "421303")
    zengdu_community = next(c for c in reg.community if c[4] == "421303") if any(
        c[4] == "421303" for c in reg.community) else reg.community[0]
    for username, display, role, level, code in (
        ("admin", "系统管理员", "admin", "province", "420000"),
        ("province", "湖北省教育厅", "manager", "province", "420000"),
        ("suizhou", "随州市教育局", "manager", "city", "421300"),
        ("wuhan", "武汉市教育局", "manager", "city", "420100"),
        ("zengdu", "曾都区教育局", "manager", "county", "421303"),
        ("ops-zengdu", "曾都区运维中心", "operations", "county", "421303"),
        ("school", zengdu_school.name, "viewer", "school", zengdu_school.code),
        ("community", zengdu_community[1], "viewer", "community", zengdu_community[0]),
    ):
        reg.app_user.append((username, display, digest, role, level, code))


def load(conn: psycopg.Connection, reg: Registry) -> None:
    """Write the registry with COPY, in foreign-key order, in the caller's transaction."""
    with conn.cursor() as cur:
        for table, cols in COLUMNS.items():
            rows = getattr(reg, table)
            if not rows:
                continue
            with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


def seed_database(url: str, scale: Scale = "demo", seed: int = 2024, *, replace: bool = False) -> dict[str, int]:
    """Generate and load a province; refuses when a registry exists unless `replace`."""
    reg = generate(scale, seed)
    with psycopg.connect(url) as conn, conn.transaction():
        if conn.execute("SELECT count(*) FROM school").fetchone()[0]:
            if not replace:
                raise RuntimeError("the registry already has schools; pass replace=True (--replace) to replace it")
            tables = ", ".join(reversed(COLUMNS))
            conn.execute(f"TRUNCATE {tables}, device_state CASCADE")  # noqa: S608 - fixed table names
        load(conn, reg)
    return reg.counts()
