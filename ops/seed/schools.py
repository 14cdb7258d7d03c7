"""Schools and their devices for one county of the seeded province.

Sizes follow the urban–rural gradient of a real county: large urban schools with
~45 pupils a class, town schools of 12–24 classes, small rural schools, and teaching
points (教学点) of one to three classes and fewer than 50 pupils.
"""

import random
from dataclasses import astuple, dataclass
from datetime import date
from typing import Literal

from api.geo.shapes import border
from ops.seed import hubei

Scale = Literal["demo", "province"]
HOME_CITY = "421300"  # 随州市: the demo's home city has enough schools per county to rank and compare
# (locale, stage) of a demo county of the home city, plus one town school of a drawn stage: 12 schools,
# primary and junior, urban, town and rural, so a county's rankings and its equity groups
# (primary: primary + nine-year; junior: junior + nine-year) have schools enough to mean something.
HOME_DEMO_PLAN = (
    ("urban", "primary"), ("urban", "junior"), ("urban", "primary"), ("town", "primary"), ("town", "junior"),
    ("town", "nine_year"), ("town", "primary"), ("rural", "primary"), ("rural", "junior"), ("rural", "primary"),
    ("rural", "teaching_point"),
)
DEMO_BOARDS_PER_SCHOOL = 12

# Schools per county at province scale, by kind of county (≈ 10,000 in all).
SCHOOLS_PER_COUNTY = {"core": 55, "district": 110, "county": 100, "city": 125, "direct": 150, "forest": 20}
LOCALE_WEIGHTS = {"core": (85, 12, 3), "district": (40, 30, 30), "forest": (10, 40, 50)}
RURAL_COUNTY_LOCALES = (18, 32, 50)
STAGE_WEIGHTS = {
    "urban": {"primary": 55, "junior": 22, "senior": 13, "nine_year": 10},
    "town": {"primary": 45, "junior": 25, "nine_year": 20, "senior": 10},
    "rural": {"primary": 45, "teaching_point": 40, "nine_year": 10, "junior": 5},
}
CLASSES = {
    ("urban", "primary"): (24, 54), ("urban", "junior"): (18, 42), ("urban", "senior"): (24, 60),
    ("urban", "nine_year"): (27, 54), ("town", "primary"): (12, 24), ("town", "junior"): (9, 24),
    ("town", "senior"): (18, 36), ("town", "nine_year"): (12, 27), ("rural", "primary"): (6, 12),
    ("rural", "junior"): (6, 12), ("rural", "nine_year"): (9, 15), ("rural", "teaching_point"): (1, 3),
}
CLASS_SIZE = {"urban": (42, 50), "town": (35, 45), "rural": (20, 35), "teaching_point": (5, 16)}
UPLINK_MBPS = {"urban": ((1000, 300), (94, 6)), "town": ((1000, 300), (60, 40)),
               "rural": ((100, 300), (55, 45)), "teaching_point": ((50, 100, 300), (25, 55, 20))}
SPREAD_DEG = {"urban": 0.04, "town": 0.18, "rural": 0.28}
BORDER_MARGIN_DEG = 0.005  # a school stands ~500 m inside its county at least: inside on any map of it


@dataclass(frozen=True)
class County:
    """A county-level division with what the generator needs to place schools in it."""

    code: str
    name: str
    city: str
    city_name: str
    latitude: float
    longitude: float

    @property
    def kind(self) -> str:
        """core / district / county / city / direct (province-administered) / forest."""
        if self.code == hubei.FOREST_DISTRICT:
            return "forest"
        if self.code == self.city:
            return "direct"
        if self.code in hubei.CORE_DISTRICTS:
            return "core"
        return {"区": "district", "市": "city"}.get(self.name[-1], "county")

    @property
    def prefix(self) -> str:
        """How school names begin: districts carry their city's name (随州市曾都区), counties not (随县)."""
        return self.city_name + self.name if self.name.endswith("区") and self.code != self.city else self.name


@dataclass(frozen=True)
class School:
    """One school row (columns in the school table's order, province filled in on output)."""

    code: str
    name: str
    county: str
    city: str
    locale: str
    stage: str
    classes: int
    students: int
    teachers: int
    uplink_mbps: int
    latitude: float
    longitude: float

    def row(self, province: str) -> tuple:
        """The school table row."""
        values = astuple(self)
        return (*values[:4], province, *values[4:])


def counties() -> list[County]:
    """Every county-level division of the province, in code order within each city."""
    return [County(code, name, city, city_name, lat, lon)
            for city, city_name, members in hubei.CITIES for code, name, lat, lon in members]


def _chinese_ordinal(n: int) -> str:
    digits = "零一二三四五六七八九"
    if n < 10:
        return digits[n]
    tens, ones = divmod(n, 10)
    return (digits[tens] if tens > 1 else "") + "十" + (digits[ones] if ones else "")


class NameBook:
    """Unique, realistic school names within one county: 实验小学, 第二中学, 何店镇中心小学, 李家湾村教学点."""

    def __init__(self, rng: random.Random, county: County) -> None:
        self.rng, self.prefix = rng, county.prefix
        towns = hubei.HOME_TOWNS.get(county.code) or rng.sample(hubei.TOWNS, rng.randint(8, 16))
        self.towns = [(t, "镇" if county.code in hubei.HOME_TOWNS or rng.random() < 0.7 else "乡") for t in towns]
        self.villages = {t: rng.sample(hubei.VILLAGES, len(hubei.VILLAGES)) for t, _ in self.towns}
        self.used: set[str] = set()
        self.ordinals: dict[str, int] = {}

    def _numbered(self, stem: str, first: str | None = None) -> str:
        n = self.ordinals[stem] = self.ordinals.get(stem, 0) + 1
        if first and n == 1:
            return self.prefix + first
        return f"{self.prefix}第{_chinese_ordinal(n - (1 if first else 0))}{stem}"

    def _in_town(self, make) -> str:
        for _ in range(40):
            town, suffix = self.rng.choice(self.towns)
            if self.villages[town]:
                name = make(f"{self.prefix}{town}{suffix}", self.villages[town])
                if name not in self.used:
                    return name
        return self._numbered("学校")

    def name(self, locale: str, stage: str) -> str:
        """A name not yet used in this county for a school of this locale and stage."""
        if locale == "urban":
            name = {"primary": lambda: self._numbered("小学", "实验小学"),
                    "junior": lambda: self._numbered("初级中学", "实验中学"),
                    "senior": lambda: self._numbered("高级中学"),
                    "nine_year": lambda: self._numbered("实验学校", "实验学校")}[stage]()
        elif stage == "teaching_point":
            name = self._in_town(lambda town, villages: f"{town}{villages.pop()}村教学点")
        elif locale == "town":
            suffix = {"primary": "中心小学", "junior": "初级中学", "senior": "高级中学", "nine_year": "九年一贯制学校"}
            name = self._in_town(lambda town, villages: town + suffix[stage] if town + suffix[stage] not in self.used
                                 else f"{town}{villages.pop()}{suffix[stage][-2:]}")
        else:
            suffix = {"primary": "小学", "junior": "中学", "nine_year": "学校"}[stage]
            name = self._in_town(lambda town, villages: f"{town}{villages.pop()}{suffix}")
        self.used.add(name)
        return name


def _plan(rng: random.Random, county: County, scale: Scale) -> list[tuple[str, str]]:
    """(locale, stage) of each school to create in the county."""
    if scale == "demo":
        town_stage = rng.choices(("primary", "junior", "nine_year", "senior"), (40, 25, 20, 15))[0]
        if county.city == HOME_CITY:
            return [*HOME_DEMO_PLAN, ("town", town_stage)]
        if county.kind == "core":  # city proper: no villages, so no teaching point
            return [("urban", "primary"), ("urban", "junior"), ("town", town_stage)]
        return [("urban", "primary"), ("town", town_stage), ("rural", "teaching_point")]
    count = round(SCHOOLS_PER_COUNTY[county.kind] * rng.uniform(0.85, 1.15))
    locales = rng.choices(("urban", "town", "rural"), LOCALE_WEIGHTS.get(county.kind, RURAL_COUNTY_LOCALES), k=count)
    plan = [("urban", "primary")]  # every county seat has its 实验小学
    for locale in locales[1:]:
        stages = STAGE_WEIGHTS[locale]
        plan.append((locale, rng.choices(list(stages), list(stages.values()))[0]))
    return plan


def _size(rng: random.Random, locale: str, stage: str) -> tuple[int, int, int]:
    """(classes, students, teachers)."""
    classes = rng.randint(*CLASSES[locale, stage])
    if stage == "teaching_point":
        students = min(49, sum(rng.randint(*CLASS_SIZE[stage]) for _ in range(classes)))
        return classes, students, rng.randint(1, min(4, classes + 1))
    lo, hi = CLASS_SIZE[locale]
    students = classes * rng.randint(lo, hi + (5 if stage == "senior" else 0))
    return classes, students, max(classes + 2, round(students / rng.uniform(13, 17)))


def _uplink(rng: random.Random, locale: str, stage: str) -> int:
    choices, weights = UPLINK_MBPS["teaching_point" if stage == "teaching_point" else locale]
    return rng.choices(choices, weights)[0]


def county_schools(rng: random.Random, county: County, scale: Scale) -> list[School]:
    """The schools of one county, coded '2' + county code + serial (学校标识码)."""
    names = NameBook(rng, county)
    schools = []
    for serial, (locale, stage) in enumerate(_plan(rng, county, scale), start=1):
        spread = SPREAD_DEG[locale] * (0.4 if county.kind == "core" else 1.0)
        schools.append(School(
            f"2{county.code}{serial:03d}", names.name(locale, stage), county.code, county.city, locale, stage,
            *_size(rng, locale, stage), _uplink(rng, locale, stage),
            *_inside(county, f"2{county.code}{serial:03d}", spread,
                     county.latitude + rng.uniform(-spread, spread),
                     county.longitude + rng.uniform(-spread, spread) * 1.15)))
    return schools


def _inside(county: County, code: str, spread: float, latitude: float, longitude: float) -> tuple[float, float]:
    """(latitude, longitude) of a school, inside its county's boundary and at least BORDER_MARGIN_DEG from it
    (the map draws it there, whatever its scale): the point drawn, else points drawn ever nearer the
    county's seat by the school's own generator (the seed's other draws stay as they were), else the seat."""
    edges = border(county.code)
    own = random.Random(code)
    lat, lon = round(latitude, 5), round(longitude, 5)
    for attempt in range(1, 41):
        if edges is None or (edges.contains(lon, lat) and edges.distance(lon, lat) >= BORDER_MARGIN_DEG):
            return lat, lon
        reach = spread * (1 - attempt / 40)
        lat = round(county.latitude + own.uniform(-reach, reach), 5)
        lon = round(county.longitude + own.uniform(-reach, reach) * 1.15, 5)
    return county.latitude, county.longitude


def classrooms(stage: str, classes: int) -> list[str]:
    """Class names, grade by grade: 一年级(1)班 … 六年级(4)班; multigrade schools take the lowest grades."""
    grades = hubei.GRADES[stage]
    per_grade = [classes // len(grades) + (1 if g < classes % len(grades) else 0) for g in range(len(grades))]
    return [f"{grade}({n})班" for grade, count in zip(grades, per_grade, strict=True) for n in range(1, count + 1)]


def _demo_rooms(rooms: list[str]) -> list[str]:
    # The first class of every grade, then the second ..., so a capped school still spans its grades.
    return sorted(rooms, key=lambda room: int(room[room.index("(") + 1:room.index(")")]))[:DEMO_BOARDS_PER_SCHOOL]


def _install_date(rng: random.Random) -> date:
    return date(rng.randint(2018, 2025), rng.choice((7, 8, 8, 12)), rng.randint(1, 28))


def school_devices(rng: random.Random, school: School, scale: Scale, board_vendor: tuple[str, str]) -> list[tuple]:
    """Device rows: a touch board per classroom, a recorder in most big schools, one gateway."""
    rooms = classrooms(school.stage, school.classes)
    if scale == "demo":
        rooms = _demo_rooms(rooms)
    vendor, model = board_vendor if rng.random() < 0.8 else rng.choice(hubei.BOARD_VENDORS)
    installed = _install_date(rng)
    rows = [(f"B{school.code}-{i:03d}", "board", school.code, room, vendor, model, installed)
            for i, room in enumerate(rooms, start=1)]
    recorders = _recorders(rng, school)
    if scale == "demo" and school.city == HOME_CITY and school.locale == "urban":
        recorders = max(1, recorders)  # the demo's home city shows every kind of remote lesson
    for n in range(1, recorders + 1):
        recorder_vendor, recorder_model = rng.choice(hubei.RECORDER_VENDORS)
        room = "录播教室" if n == 1 else f"录播教室{n}"
        rows.append((f"R{school.code}-{n:02d}", "recorder", school.code, room, recorder_vendor, recorder_model,
                     _install_date(rng)))
    gateway_vendor, gateway_model = rng.choice(hubei.GATEWAY_VENDORS)
    rows.append((f"G{school.code}", "gateway", school.code, "网络中心", gateway_vendor, gateway_model, installed))
    return rows


def _recorders(rng: random.Random, school: School) -> int:
    if school.stage == "teaching_point":
        return 0
    if school.locale == "rural" or school.classes < 12:
        return int(rng.random() < 0.08)
    if rng.random() >= (0.85 if school.locale == "urban" else 0.65):
        return 0
    return 2 if school.classes >= 40 and rng.random() < 0.35 else 1
