"""The database half of an import: stage the checked rows, check them against the registry and
the importer's scope, and write them, set-based, in one transaction.

Every step runs inside one transaction (a savepoint when the caller already has one open),
under an advisory lock so two imports never interleave:

1. The divisions a file needs are resolved (its 区划 sheet, the registry, the package; see
   divisions.py for who decides a parent) and the rows passing the sheet checks are copied with
   COPY into temporary tables. A blank optional cell (经度/纬度, 安装日期, 状态, 成立日期) takes
   the stored value there: blank means unchanged, in every sheet, for every optional column.
2. What only the registry can tell is checked with a few set-based queries: a device's or a
   member's school neither in the file nor in the registry, a device changing kind, a key that
   differs only by case from a stored one, a user's scope that does not exist, the importer
   changing their own account, and rows outside the importer's scope.
   The scope rules are the administration API's (api/registry/service.py, whose `scope_codes`
   gives the codes of a level inside a scope; the import uses the same subqueries), applied to
   the records as registered and then to where the file puts them, as the API would if the file
   were sent to it row by row:
   * a school: as registered, inside the scope (update); created, or given another county, in a
     county inside the scope (create, move) — so a school's or a community's administrator
     changes their schools' details but moves or creates none; a community following its lead
     school to another county must lie inside the scope and stay there;
   * a device: its school as registered, and the school the file gives it, inside the scope;
   * a community: as registered, inside the scope; a new one in a county inside the scope; a
     school joining it or changing its role inside the scope (unchanged members and leaves are the
     community's administrator's, wherever the school lies);
   * a user: their scope as registered and the one the file gives them inside the scope.
   The divisions the file needs are written before the second half (inside the same
   transaction), so a county the file brings is judged like one already registered.
3. Any problem from the checks so far rolls everything back: a file with an error changes
   nothing. A dry run counts what would change and rolls back too.
4. Otherwise the changes are counted and written by comparing the staged rows with the stored
   ones: history rows first (INSERT … SELECT of the old and new record of everything created,
   changed, moved, retired, returned, joined or left, as the administration pages keep it),
   then INSERT of the new rows and UPDATE … FROM of the rows whose values differ, so a second
   import of the same file finds nothing to write: no update, no history, no audit entry.
"""

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd
import psycopg
from psycopg import sql
from psycopg.rows import tuple_row
from sqlalchemy.dialects import postgresql

from api.auth import policy
from api.auth.models import User
from api.registry.divisions import Declared, Divisions, Resolver
from api.registry.import_check import Checked
from api.registry.import_spec import Issue
from api.registry.service import scope_codes
from core.scope import schools_of
from core.security import hash_password
from core.storable import storable

log = logging.getLogger(__name__)

IMPORT_LOCK = 742_017  # advisory lock id: one registry import at a time
RETIRED_REASON = "导入退役 / retired by import"


@dataclass(frozen=True)
class ImportScope:
    """The scope bounding an import: an administrator's (level, code). None: no bound (the CLI)."""

    level: str
    code: str


@dataclass
class Outcome:
    """What the database half found and did."""

    issues: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    passwords: list[dict[str, str]] = field(default_factory=list)
    applied: bool = False


class _Abort(Exception):
    """Roll the import back (errors found, or a dry run)."""


def _rows(frame: pd.DataFrame, columns: list[str]):
    """The frame's rows as tuples of plain Python values (None for blanks), row number first."""
    values = frame[columns].astype(object).where(frame[columns].notna(), None)
    return zip(frame.index.tolist(), *(values[c].tolist() for c in columns), strict=True)


class Run:
    """One import against one connection (see the module's steps)."""

    # the communities not in the file whose lead school the file puts in another county: they follow it
    _FOLLOWING = ("imp_school i JOIN community c ON c.lead_school_code = i.code WHERE c.county_code <> i.county_code "
                  "AND NOT EXISTS (SELECT 1 FROM imp_community x WHERE x.code = c.code)")

    def __init__(self, conn: psycopg.Connection, checked: dict[str, Checked], actor: str,
                 scope: ImportScope | None, filename: str, sha256: str, rows: dict[str, int]) -> None:
        self.conn = conn
        self.cur = conn.cursor(row_factory=tuple_row)
        self.checked = checked
        self.actor = actor
        self.scope = scope
        self.filename = filename
        self.sha256 = sha256
        self.rows = rows
        self.out = Outcome()

    # -- helpers ----------------------------------------------------------------------------

    def _sheet(self, key: str) -> Checked | None:
        return self.checked.get(key)

    def _issue(self, key: str, rows, column: str | None, zh: str, en: str) -> None:
        sheet = self.checked[key]
        header = sheet.header(column) if column else None
        self.out.issues.extend(Issue(sheet.raw.name, int(r), header, zh, en) for r in sorted(set(rows)))

    def _query(self, query, params=None) -> list[tuple]:
        return self.cur.execute(query, params or {}).fetchall()

    def _scalar_rows(self, query, params=None) -> list:
        return [r[0] for r in self._query(query, params)]

    def _inside(self, alias: str) -> sql.Composable:
        """Predicate: the school `alias` (code, county_code, city_code, province_code) lies in the scope."""
        return schools_of(self.scope.level, "scope_code", alias)

    def _in_scope(self, level: str, column: str) -> sql.Composable:
        """Predicate: `column` is the code of a `level` inside the scope, by the administration API's own
        subquery (service.scope_codes over the registry's tables; false where no such level can be)."""
        admin = User(username=self.actor, display_name=self.actor, role="admin", scope_level=self.scope.level,
                     scope_code=self.scope.code)
        codes = scope_codes(admin, level)
        if codes is None:
            return sql.SQL("false")
        compiled = str(codes.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
        return sql.SQL("{} IN ({})").format(sql.SQL(column), sql.SQL(compiled.replace("%", "%%")))

    def _copy(self, table: str, columns: list[str], rows) -> None:
        with self.cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))) as copy:
            for row in rows:
                copy.write_row(row)
        self.cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))

    # -- the run -------------------------------------------------------------------------------

    def execute(self, issues: list[Issue], dry_run: bool) -> Outcome:
        """Check against the registry and write unless there are issues or it is a dry run."""
        self.out.issues = list(issues)
        try:
            with self.conn.transaction():
                self.cur.execute("SELECT pg_advisory_xact_lock(%s)", (IMPORT_LOCK,))
                self._stage()
                self._check_references()
                if self.scope is not None:
                    self._check_registered()
                self.division_plan = self.resolver.plan()
                self._write_divisions()
                if self.scope is not None:
                    self._check_placed()
                if self.out.issues:
                    raise _Abort
                self._count()
                if dry_run:
                    raise _Abort
                self._write()
                self.out.applied = True
        except _Abort:
            pass
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            # the checks should have caught it: say so in the report (nothing was written) and log the gap
            log.error("the database refused an import the checks passed: %s", exc, exc_info=exc)
            reason = storable(getattr(exc.diag, "message_primary", None) or str(exc))[:300]
            self.out.issues.append(Issue(self.filename, 0, None, f"数据库拒绝了该文件：{reason}",
                                         f"the database refused the file: {reason}"))
        return self.out

    # -- 1. stage -------------------------------------------------------------------------------

    def _registry_divisions(self) -> Divisions:
        known = Divisions()
        known.provinces = dict(self._query("SELECT code, name FROM province"))
        known.cities = {c: (n, p) for c, n, p in self._query("SELECT code, name, province_code FROM city")}
        counties = self._query("SELECT code, name, city_code, province_code, city_set_by IS NOT NULL FROM county")
        known.counties = {c: (n, ci, p) for c, n, ci, p, _set in counties}
        known.confirmed = {c for c, *_x, confirmed in counties if confirmed}
        return known

    def _stage(self) -> None:
        self.cur.execute("""
            DROP TABLE IF EXISTS imp_school, imp_school_key, imp_place, imp_device, imp_member, imp_community,
                                 imp_community_key;
            CREATE TEMP TABLE imp_school (row int, code char(10) PRIMARY KEY, name text, county_code text,
                city_code text, province_code text, locale text, stage text, classes int, students int, teachers int,
                uplink_mbps int, latitude float8, longitude float8) ON COMMIT DROP;
            CREATE TEMP TABLE imp_school_key (code char(10) PRIMARY KEY) ON COMMIT DROP;
            CREATE TEMP TABLE imp_device (row int, id text PRIMARY KEY, kind text, school_code char(10), room text,
                vendor text, model text, installed_on date, status text) ON COMMIT DROP;
            CREATE TEMP TABLE imp_member (row int, code text, name text, kind text, school_code char(10), role text,
                founded_on date, PRIMARY KEY (code, school_code)) ON COMMIT DROP;
            CREATE TEMP TABLE imp_community_key (code text PRIMARY KEY) ON COMMIT DROP;
        """)
        self._stage_divisions_and_schools()
        devices = self._sheet("devices")
        if devices is not None:
            cols = ["id", "kind", "school_code", "room", "vendor", "model", "installed_on", "status"]
            self._copy("imp_device", ["row", *cols], _rows(devices.valid(), cols))
        communities = self._sheet("communities")
        if communities is not None:
            cols = ["code", "name", "kind", "school_code", "role", "founded_on"]
            valid = communities.valid()
            # a community with one failing row is not staged at all (its member list would be wrong)
            broken = set(communities.frame.loc[~communities.ok, "code"].dropna())
            self._copy("imp_member", ["row", *cols], _rows(valid[~valid["code"].isin(broken)], cols))
            self._copy("imp_community_key", ["code"], ((c,) for c in communities.frame["code"].dropna().unique()))
        self.cur.execute("""
            CREATE TEMP TABLE imp_place ON COMMIT DROP AS
                SELECT code, county_code, city_code, province_code FROM imp_school
                UNION ALL
                SELECT s.code, s.county_code, s.city_code, s.province_code FROM school s
                WHERE NOT EXISTS (SELECT 1 FROM imp_school i WHERE i.code = s.code);
            ALTER TABLE imp_place ADD PRIMARY KEY (code);
            ANALYZE imp_place;
            CREATE TEMP TABLE imp_community ON COMMIT DROP AS
                SELECT DISTINCT ON (m.code) m.row, m.code, m.name, m.kind, m.founded_on,
                       m.school_code AS lead_school_code, p.county_code
                FROM imp_member m LEFT JOIN imp_place p ON p.code = m.school_code
                WHERE m.role = 'lead' ORDER BY m.code, m.row;
            ALTER TABLE imp_community ADD PRIMARY KEY (code);
            ANALYZE imp_community;
        """)
        self._keep_stored_values()
        self._stage_users()

    def _keep_stored_values(self) -> None:
        """A blank optional cell leaves the stored value: the staged row takes it, so the comparisons, the
        history and the writes that follow see no change there (状态 blank is no change by itself)."""
        self.cur.execute("""
            UPDATE imp_school i SET latitude = s.latitude, longitude = s.longitude FROM school s
            WHERE s.code = i.code AND i.latitude IS NULL AND i.longitude IS NULL;
            UPDATE imp_device i SET installed_on = d.installed_on FROM device_all d
            WHERE d.id = i.id AND i.installed_on IS NULL;
            UPDATE imp_community i SET founded_on = c.founded_on FROM community c
            WHERE c.code = i.code AND i.founded_on IS NULL;
        """)

    def _stage_divisions_and_schools(self) -> None:
        declared = []
        divisions = self._sheet("divisions")
        if divisions is not None:
            for row, code, name, parent in _rows(divisions.valid(), ["code", "name", "parent_code"]):
                declared.append(Declared(row, code, name, parent))
        self.resolver = Resolver(self._registry_divisions(), declared, full_power=self.scope is None)
        for p in self.resolver.problems:
            self._issue("divisions", [p.row], p.column, p.zh, p.en)
        schools = self._sheet("schools")
        if schools is None:
            return
        valid = schools.valid().copy()
        placed = {code: self.resolver.county(code) for code in valid["county_code"].unique()}
        unknown = valid["county_code"].map(lambda c: placed[c] is None).astype(bool)
        for code, rows in valid[unknown].groupby("county_code").groups.items():
            self._issue("schools", rows, "county_code", *self._unknown_county(code))
        valid = valid.loc[~unknown]
        for code in valid["county_code"].unique():
            self.resolver.use("county", code)
        valid["city_code"] = valid["county_code"].map(lambda c: placed[c][1]).astype(object)
        valid["province_code"] = valid["county_code"].map(lambda c: placed[c][2]).astype(object)
        cols = ["code", "name", "county_code", "city_code", "province_code", "locale", "stage", "classes", "students",
                "teachers", "uplink_mbps", "latitude", "longitude"]
        self._copy("imp_school", ["row", *cols], _rows(valid, cols))
        keys = schools.frame.loc[schools.frame["code"].notna(), "code"].unique()
        self._copy("imp_school_key", ["code"], ((c,) for c in keys))

    def _unknown_county(self, code: str) -> tuple[str, str]:
        """Why a school's county code places nothing: a conflict in the registry, or no such county."""
        return self.resolver.conflicts.get(code) or (
            "区县代码不存在（不在区划表、登记册或行政区划数据中；新设区县请在区划表中添加）",
            "no such county code (not in the 区划 sheet, the registry or the division data; "
            "add a new county in the 区划 sheet)")

    def _stage_users(self) -> None:
        """Users are few: checked in Python against what the file and the registry hold."""
        self.users = pd.DataFrame()
        sheet = self._sheet("users")
        if sheet is None:
            return
        users = sheet.valid().copy()
        wanted = {lv: sorted(set(users.loc[users["scope_level"] == lv, "scope_code"])) for lv in ("school", "community")}
        schools = set(self._scalar_rows(
            "SELECT code FROM imp_school_key WHERE code = ANY(%(c)s) UNION SELECT code FROM school WHERE code = ANY(%(c)s)",
            {"c": wanted["school"]}))
        communities = set(self._scalar_rows(
            "SELECT code FROM imp_community_key WHERE code = ANY(%(c)s) "
            "UNION SELECT code FROM community WHERE code = ANY(%(c)s)", {"c": wanted["community"]}))
        missing = []
        for row, level, code in _rows(users, ["scope_level", "scope_code"]):
            if level in ("province", "city", "county"):
                found = self.resolver.resolve(level, code) is not None
                if found:
                    self.resolver.use(level, code)
                elif code in self.resolver.conflicts:
                    self._issue("users", [row], "scope_code", *self.resolver.conflicts[code])
                    missing.append(row)
                    continue
            else:
                found = code in (schools if level == "school" else communities)
            if not found:
                missing.append(row)
                self._issue("users", [row], "scope_code", "范围代码不存在（该级别下没有这个代码）",
                            "no such scope code at that scope level")
        self.users = users.drop(index=missing)
        existing = self._query(
            "SELECT username, display_name, role, scope_level, scope_code FROM app_user WHERE username = ANY(%s)",
            (self.users["username"].tolist(),))
        self.existing_users = {u[0]: u for u in existing}
        own = [r for r, username, role, level, code in _rows(self.users, ["username", "role", "scope_level", "scope_code"])
               if username == self.actor and username in self.existing_users
               and self.existing_users[username][2:] != (role, level, code)]
        self._issue("users", own, "role", "不能通过导入更改自己的角色或范围", "you cannot change your own role or scope by import")
        ignored = [r for r, username, password in _rows(self.users, ["username", "password"])
                   if password is not None and username in self.existing_users]
        sheet_name = sheet.raw.name
        self.out.warnings.extend(Issue(sheet_name, int(r), sheet.header("password"), "用户已存在，保留原密码，忽略初始密码",
                                       "the user exists and keeps their password: the initial password is ignored")
                                 for r in ignored)

    # -- 2. checks against the registry -----------------------------------------------------------

    def _check_references(self) -> None:
        if self._sheet("devices") is not None:
            rows = self._scalar_rows("""
                SELECT i.row FROM imp_device i
                WHERE NOT EXISTS (SELECT 1 FROM imp_school_key k WHERE k.code = i.school_code)
                  AND NOT EXISTS (SELECT 1 FROM school s WHERE s.code = i.school_code)""")
            self._issue("devices", rows, "school_code", "学校不在文件的学校表中，也不在登记册中",
                        "the school is neither in the file's schools nor in the registry")
            rows = self._scalar_rows("SELECT i.row FROM imp_device i JOIN device_all d ON d.id = i.id WHERE d.kind <> i.kind")
            self._issue("devices", rows, "kind", "设备类型不能更改（请用新的设备编号登记）",
                        "a device's kind cannot change (register it under a new id)")
        if self._sheet("communities") is not None:
            rows = self._scalar_rows("""
                SELECT m.row FROM imp_member m
                WHERE NOT EXISTS (SELECT 1 FROM imp_school_key k WHERE k.code = m.school_code)
                  AND NOT EXISTS (SELECT 1 FROM school s WHERE s.code = m.school_code)""")
            self._issue("communities", rows, "school_code", "学校不在文件的学校表中，也不在登记册中",
                        "the school is neither in the file's schools nor in the registry")
        self._check_case_twins()

    def _check_case_twins(self) -> None:
        """A device id, community code or username differing only by case from a stored one is refused: the
        two would be told apart by nobody reading them (the file's own rows: import_check)."""
        users = self.users if len(self.users) else pd.DataFrame({"username": []})
        for key, column, staged, stored, params in (
                ("devices", "id", "SELECT row, id AS key FROM imp_device", "SELECT id AS key FROM device_all", {}),
                ("communities", "code", "SELECT min(row) AS row, code AS key FROM imp_member GROUP BY code",
                 "SELECT code AS key FROM community", {}),
                ("users", "username", "SELECT * FROM unnest(%(rows)s::int[], %(keys)s::text[]) AS u(row, key)",
                 "SELECT username AS key FROM app_user",
                 {"rows": users.index.tolist(), "keys": users["username"].tolist()})):
            if self._sheet(key) is None:
                continue
            found = self._query(f"SELECT i.row, min(s.key) FROM ({staged}) i JOIN ({stored}) s "  # noqa: S608
                                "ON lower(s.key) = lower(i.key) AND s.key <> i.key GROUP BY i.row", params)
            for row, twin in found:
                self._issue(key, [row], column, f"与已登记的“{twin}”仅大小写不同", f"differs only by case from {twin!r}, "
                            "which is registered")

    def _check_registered(self) -> None:
        """The records the file changes, as registered, lie inside the scope (the API's look-ups)."""
        outside_zh, outside_en = "不在您的管理范围内", "lies outside your scope"
        if self._sheet("schools") is not None:
            rows = self._scalar_rows(sql.SQL("SELECT i.row FROM imp_school i JOIN school s ON s.code = i.code "
                                             "WHERE NOT {}").format(self._in_scope("school", "s.code")))
            self._issue("schools", rows, "code", "该学校现在" + outside_zh, "the school as registered " + outside_en)
            # a community follows its lead school: as registered, it must be the importer's to move
            rows = self._scalar_rows(sql.SQL(f"SELECT i.row FROM {self._FOLLOWING} AND NOT {{}}").format(  # noqa: S608
                self._in_scope("community", "c.code")))
            self._issue("schools", rows, "county_code", "该校牵头的教联体" + outside_zh + "，不能随学校迁移",
                        "the school leads a community that " + outside_en + ": it cannot move along")
        if self._sheet("devices") is not None:
            rows = self._scalar_rows(sql.SQL("SELECT i.row FROM imp_device i JOIN device_all d ON d.id = i.id "
                                             "WHERE NOT {}").format(self._in_scope("school", "d.school_code")))
            self._issue("devices", rows, "id", "该设备现在所在学校" + outside_zh,
                        "the device's school as registered " + outside_en)
        if self._sheet("communities") is not None:
            rows = self._scalar_rows(sql.SQL("SELECT i.row FROM imp_community i JOIN community c ON c.code = i.code "
                                             "WHERE NOT {}").format(self._in_scope("community", "c.code")))
            self._issue("communities", rows, "code", "该教联体现在" + outside_zh,
                        "the community as registered " + outside_en)
        if self._sheet("divisions") is not None:
            self._check_divisions_scope()

    def _check_placed(self) -> None:
        """Where the file puts each record lies inside the scope (the API's creates and moves), with the
        file's divisions already written."""
        params = {"scope_code": self.scope.code}
        outside_zh, outside_en = "不在您的管理范围内", "lies outside your scope"
        county_outside = sql.SQL("NOT {}").format(self._in_scope("county", "i.county_code"))
        if self._sheet("schools") is not None:
            moved = ("SELECT i.row FROM imp_school i LEFT JOIN school s ON s.code = i.code "  # noqa: S608
                     "WHERE (s.code IS NULL OR s.county_code <> i.county_code) AND {} "
                     f"UNION SELECT i.row FROM {self._FOLLOWING} AND {{}}")
            rows = self._scalar_rows(sql.SQL(moved).format(county_outside, county_outside))
            self._issue("schools", rows, "county_code", "学校所在区县" + outside_zh + "（新建或迁移学校须在您管理的区县）",
                        "the school's county " + outside_en + " (a school is created in or moved to a county of "
                        "your scope)")
        if self._sheet("devices") is not None:
            rows = self._scalar_rows(sql.SQL("SELECT i.row FROM imp_device i JOIN imp_place p ON p.code = i.school_code "
                                             "WHERE NOT ({})").format(self._inside("p")), params)
            self._issue("devices", rows, "school_code", "设备所在学校" + outside_zh, "the device's school " + outside_en)
        if self._sheet("communities") is not None:
            rows = self._scalar_rows(sql.SQL(
                "SELECT m.row FROM imp_member m JOIN imp_place p ON p.code = m.school_code WHERE NOT ({}) AND NOT EXISTS "
                "(SELECT 1 FROM community_member cm WHERE (cm.community_code, cm.school_code, cm.role) = "
                "(m.code, m.school_code, m.role))").format(self._inside("p")), params)
            self._issue("communities", rows, "school_code", "加入或改变角色的学校" + outside_zh,
                        "the school joining or changing its role " + outside_en)
            rows = self._scalar_rows(sql.SQL(
                "SELECT i.row FROM imp_community i WHERE NOT EXISTS (SELECT 1 FROM community c WHERE c.code = i.code) "
                "AND {}").format(county_outside))
            self._issue("communities", rows, "code", "新教联体牵头学校所在区县" + outside_zh,
                        "the new community's county (its lead school's) " + outside_en)
        if len(self.users):
            self._check_users_scope()

    def _check_divisions_scope(self) -> None:
        level, code = self.scope.level, self.scope.code
        refused = []
        for division_code, (division_level, row) in self.resolver.declared_rows.items():
            county, city, province = self.resolver.resolve(division_level, division_code)
            before = {"province": self.resolver.registry.provinces, "city": self.resolver.registry.cities,
                      "county": self.resolver.registry.counties}[division_level].get(division_code)
            if level == "province":
                fine = province == code and (before is None or division_level == "province" or before[-1] == code)
            elif level == "city":
                fine = division_level == "county" and city == code and (before is None or before[1] == code)
            else:
                fine = False
            if not fine:
                refused.append(row.row)
        self._issue("divisions", refused, "code", "该行政区划不在您的管理范围内（区划只能由省级或市级管理员导入）",
                    "the division lies outside your scope (divisions are imported by province or city administrators)")

    def _placement(self, level: str, code: str, schools: dict, communities: dict) -> tuple | None:
        """(county, city, province) of a scope, or None if unknown."""
        if level in ("province", "city", "county"):
            return self.resolver.resolve(level, code)
        if level == "school":
            return schools.get(code)
        county = communities.get(code)
        return self.resolver.resolve("county", county) if county else None

    def _within(self, level: str, code: str, schools: dict, communities: dict, members: set) -> bool:
        mine_level, mine = self.scope.level, self.scope.code
        if mine_level == "community":
            return (level == "community" and code == mine) or (level == "school" and code in members)
        if mine_level == "school":
            return level == "school" and code == mine
        placed = self._placement(level, code, schools, communities)
        if placed is None:
            return False
        return placed[("county", "city", "province").index(mine_level)] == mine

    def _check_users_scope(self) -> None:
        targets = [(lv, c) for lv, c in zip(self.users["scope_level"], self.users["scope_code"], strict=True)]
        targets += [(u[3], u[4]) for u in self.existing_users.values()]
        school_codes = sorted({c for lv, c in targets if lv == "school"})
        community_codes = sorted({c for lv, c in targets if lv == "community"})
        schools = {r[0]: (r[1], r[2], r[3]) for r in self._query(
            "SELECT code, county_code, city_code, province_code FROM imp_place WHERE code = ANY(%s)", (school_codes,))}
        communities = dict(self._query(
            "SELECT code, county_code FROM imp_community WHERE code = ANY(%(c)s) UNION ALL "
            "SELECT code, county_code FROM community c WHERE code = ANY(%(c)s) "
            "AND NOT EXISTS (SELECT 1 FROM imp_community i WHERE i.code = c.code)", {"c": community_codes}))
        members = set(self._scalar_rows("SELECT school_code FROM community_member WHERE community_code = %s",
                                        (self.scope.code,))) if self.scope.level == "community" else set()
        target_out, current_out = [], []
        for row, username, level, code in _rows(self.users, ["username", "scope_level", "scope_code"]):
            if not self._within(level, code, schools, communities, members):
                target_out.append(row)
            current = self.existing_users.get(username)
            if current is not None and not self._within(current[3], current[4], schools, communities, members):
                current_out.append(row)
        self._issue("users", target_out, "scope_code", "该范围不在您的管理范围内", "the scope lies outside your own")
        self._issue("users", current_out, "username", "该用户现在的范围不在您的管理范围内",
                    "the user's current scope lies outside your own")

    # -- 3. count ------------------------------------------------------------------------------

    _SCHOOL_VALUES = ("name", "county_code", "locale", "stage", "classes", "students", "teachers", "uplink_mbps",
                      "latitude", "longitude")

    def _distinct(self, left: str, right: str, columns) -> str:
        return (f"({', '.join(f'{left}.{c}' for c in columns)}) IS DISTINCT FROM "
                f"({', '.join(f'{right}.{c}' for c in columns)})")

    def _count(self) -> None:
        changes = {"divisions": self.division_plan.counts()}
        if self._sheet("schools") is not None:
            created, changed, moved, same = self._query(
                "SELECT count(*) FILTER (WHERE s.code IS NULL), "  # noqa: S608
                f"count(*) FILTER (WHERE s.code IS NOT NULL AND {self._distinct('s', 'i', self._SCHOOL_VALUES)}), "
                "count(*) FILTER (WHERE s.county_code <> i.county_code), "
                f"count(*) FILTER (WHERE s.code IS NOT NULL AND NOT {self._distinct('s', 'i', self._SCHOOL_VALUES)}) "
                "FROM imp_school i LEFT JOIN school s ON s.code = i.code")[0]
            changes["schools"] = {"created": created, "changed": changed, "moved": moved, "unchanged": same}
        if self._sheet("devices") is not None:
            created, changed, moved, retired, returned, same = self._query(f"""
                SELECT count(*) FILTER (WHERE d.id IS NULL),
                       count(*) FILTER (WHERE d.id IS NOT NULL AND ({self._device_differs()})),
                       count(*) FILTER (WHERE (d.school_code, d.room) <> (i.school_code, i.room)),
                       count(*) FILTER (WHERE i.status = 'retired' AND d.retired_at IS NULL),
                       count(*) FILTER (WHERE i.status = 'active' AND d.retired_at IS NOT NULL),
                       count(*) FILTER (WHERE d.id IS NOT NULL AND NOT ({self._device_differs()}))
                FROM imp_device i LEFT JOIN device_all d ON d.id = i.id""")[0]  # noqa: S608
            changes["devices"] = {"created": created, "changed": changed, "moved": moved, "retired": retired,
                                  "returned": returned, "unchanged": same}
        if self._sheet("communities") is not None:
            created, changed, same = self._query(f"""
                SELECT count(*) FILTER (WHERE c.code IS NULL),
                       count(*) FILTER (WHERE c.code IS NOT NULL AND {self._community_differs()}),
                       count(*) FILTER (WHERE c.code IS NOT NULL AND NOT {self._community_differs()})
                FROM imp_community i LEFT JOIN community c ON c.code = i.code""")[0]  # noqa: S608
            joined, left, roles = self._query("""
                SELECT (SELECT count(*) FROM imp_member m WHERE NOT EXISTS (SELECT 1 FROM community_member cm
                        WHERE cm.community_code = m.code AND cm.school_code = m.school_code)),
                       (SELECT count(*) FROM community_member cm JOIN imp_community c ON c.code = cm.community_code
                        WHERE NOT EXISTS (SELECT 1 FROM imp_member m WHERE m.code = cm.community_code
                                          AND m.school_code = cm.school_code)),
                       (SELECT count(*) FROM imp_member m JOIN community_member cm ON cm.community_code = m.code
                        AND cm.school_code = m.school_code WHERE cm.role <> m.role)""")[0]
            changes["communities"] = {"created": created, "changed": changed, "joined": joined, "left": left,
                                      "roles_changed": roles, "unchanged": same}
        if self._sheet("schools") is not None:
            followed = self._query(f"SELECT count(*) FROM {self._FOLLOWING}")[0][0]  # noqa: S608
            if followed:
                communities = changes.setdefault("communities", {"created": 0, "changed": 0, "joined": 0, "left": 0,
                                                                 "roles_changed": 0, "unchanged": 0})
                communities["changed"] += followed
        if self._sheet("users") is not None:
            created = sum(1 for u in self.users["username"] if u not in self.existing_users)
            changed = sum(1 for _r, u, *values in _rows(self.users, ["username", "display_name", "role", "scope_level",
                                                                     "scope_code"])
                          if u in self.existing_users and tuple(self.existing_users[u][1:]) != tuple(values))
            changes["users"] = {"created": created, "changed": changed, "unchanged": len(self.users) - created - changed}
        self.out.changes = changes

    @staticmethod
    def _device_differs() -> str:
        return ("(d.school_code, d.room, d.vendor, d.model, d.installed_on) IS DISTINCT FROM "
                "(i.school_code, i.room, i.vendor, i.model, i.installed_on) "
                "OR (i.status = 'retired' AND d.retired_at IS NULL) OR (i.status = 'active' AND d.retired_at IS NOT NULL)")

    @staticmethod
    def _community_differs() -> str:
        return ("(c.name, c.kind, c.lead_school_code, c.county_code, c.founded_on) IS DISTINCT FROM "
                "(i.name, i.kind, i.lead_school_code, i.county_code, i.founded_on)")

    # -- 4. write --------------------------------------------------------------------------------

    def _history(self, query: str) -> None:
        """INSERT … SELECT history rows: the query selects (entity, key, change, before, after)."""
        self.cur.execute(
            "INSERT INTO registry_history (entity, key, change, before, after, changed_by, source) "  # noqa: S608
            f"SELECT h.*, %(actor)s, 'import' FROM ({query}) h", {"actor": self.actor})

    def _write(self) -> None:
        if self._sheet("schools") is not None:
            self._write_schools()
        if self._sheet("communities") is not None or self._sheet("schools") is not None:
            self._write_communities()
        if self._sheet("devices") is not None:
            self._write_devices()
        if self._sheet("users") is not None:
            self._write_users()
        if self.total_changed() or self.out.passwords:
            self._audit()

    def total_changed(self) -> int:
        """Records created or changed (moves, retirements and returns are changes; joins and leaves count)."""
        counted = {"created", "changed", "renamed", "joined", "left", "roles_changed"}
        return sum(n for group in self.out.changes.values() for k, n in group.items() if k in counted) + \
            self.out.changes.get("divisions", {}).get("moved", 0)

    def _write_divisions(self) -> None:
        plan = self.division_plan
        self.cur.executemany("INSERT INTO province (code, name) VALUES (%s, %s)", list(plan.create.provinces.items()))
        self.cur.executemany("INSERT INTO city (code, name, province_code) VALUES (%s, %s, %s)",
                             [(c, n, p) for c, (n, p) in plan.create.cities.items()])
        self.cur.executemany("INSERT INTO county (code, name, city_code, province_code) VALUES (%s, %s, %s, %s)",
                             [(c, n, ci, p) for c, (n, ci, p) in plan.create.counties.items()])
        for level, code, _old, new in plan.rename:
            self.cur.execute(sql.SQL("UPDATE {} SET name = %s WHERE code = %s").format(sql.Identifier(level)),
                             (new, code))
        # a division moving carries what lies in it along (sql/025: ON UPDATE CASCADE); cities first
        for level, code, _old, new in sorted(plan.move):
            self.cur.execute("UPDATE city SET province_code = %s WHERE code = %s" if level == "city" else
                             "UPDATE county SET (city_code, province_code) = (SELECT code, province_code FROM city "
                             "WHERE code = %s) WHERE code = %s", (new, code))
        self.cur.executemany("UPDATE county SET city_set_by = %s WHERE code = %s",
                             [(self.actor if departs else None, code) for code, departs in plan.confirm.items()])

    @staticmethod
    def _json(alias: str, columns) -> str:
        """SQL: jsonb of these columns of `alias` (the record as the history keeps it)."""
        return "jsonb_build_object(" + ", ".join(f"'{c}', {alias}.{c}" for c in columns) + ")"

    _SCHOOL_RECORD = ("code", "name", "county_code", "city_code", "province_code", "locale", "stage", "classes",
                      "students", "teachers", "uplink_mbps", "latitude", "longitude")

    def _write_schools(self) -> None:
        record = self._SCHOOL_RECORD
        self._history(f"""
            SELECT 'school', i.code::text,
                   CASE WHEN s.code IS NULL THEN 'created' WHEN s.county_code <> i.county_code THEN 'moved'
                        ELSE 'changed' END,
                   CASE WHEN s.code IS NOT NULL THEN {self._json('s', record)} END, {self._json('i', record)}
            FROM imp_school i LEFT JOIN school s ON s.code = i.code
            WHERE s.code IS NULL OR {self._distinct('s', 'i', self._SCHOOL_VALUES)}""")  # noqa: S608
        columns = ", ".join(("code", "city_code", "province_code") + self._SCHOOL_VALUES)
        self.cur.execute(f"""
            INSERT INTO school ({columns}) SELECT {columns} FROM imp_school i
            WHERE NOT EXISTS (SELECT 1 FROM school s WHERE s.code = i.code)""")  # noqa: S608
        every = ("city_code", "province_code") + self._SCHOOL_VALUES
        self.cur.execute(f"""
            UPDATE school s SET {", ".join(f"{c} = i.{c}" for c in every)}
            FROM imp_school i WHERE s.code = i.code AND {self._distinct('s', 'i', every)}""")  # noqa: S608

    def _write_communities(self) -> None:
        record = ("code", "name", "kind", "lead_school_code", "county_code", "founded_on")
        # a community's county is its lead school's: follow leads that moved (communities not in the file too)
        followed = """
            FROM community c JOIN school s ON s.code = c.lead_school_code
            WHERE c.county_code <> s.county_code AND s.code IN (SELECT code FROM imp_school)
              AND NOT EXISTS (SELECT 1 FROM imp_community x WHERE x.code = c.code)"""
        self._history(f"SELECT 'community', c.code, 'changed', {self._json('c', record)}, "  # noqa: S608
                      f"{self._json('c', record)} || jsonb_build_object('county_code', s.county_code) {followed}")
        self.cur.execute("""
            UPDATE community c SET county_code = s.county_code FROM school s
            WHERE s.code = c.lead_school_code AND c.county_code <> s.county_code AND s.code IN (SELECT code FROM imp_school)
              AND NOT EXISTS (SELECT 1 FROM imp_community x WHERE x.code = c.code)""")
        if self._sheet("communities") is None:
            return
        self._history(f"""
            SELECT 'community', i.code, CASE WHEN c.code IS NULL THEN 'created' ELSE 'changed' END,
                   CASE WHEN c.code IS NOT NULL THEN {self._json('c', record)} END,
                   {self._json('i', record)}
            FROM imp_community i LEFT JOIN community c ON c.code = i.code
            WHERE c.code IS NULL OR {self._community_differs()}""")  # noqa: S608
        self.cur.execute("""
            INSERT INTO community (code, name, kind, lead_school_code, county_code, founded_on)
            SELECT code, name, kind, lead_school_code, county_code, founded_on FROM imp_community i
            WHERE NOT EXISTS (SELECT 1 FROM community c WHERE c.code = i.code)""")
        self.cur.execute(f"""
            UPDATE community c SET name = i.name, kind = i.kind, lead_school_code = i.lead_school_code,
                   county_code = i.county_code, founded_on = i.founded_on
            FROM imp_community i WHERE c.code = i.code AND {self._community_differs()}""")  # noqa: S608
        self._history("""
            SELECT 'community_member', cm.community_code || '/' || cm.school_code, 'left',
                   jsonb_build_object('community_code', cm.community_code, 'school_code', cm.school_code,
                                      'role', cm.role, 'joined_on', cm.joined_on), NULL::jsonb
            FROM community_member cm JOIN imp_community c ON c.code = cm.community_code
            WHERE NOT EXISTS (SELECT 1 FROM imp_member m WHERE m.code = cm.community_code
                              AND m.school_code = cm.school_code)""")
        self.cur.execute("""
            DELETE FROM community_member cm USING imp_community c
            WHERE c.code = cm.community_code AND NOT EXISTS (SELECT 1 FROM imp_member m WHERE m.code = cm.community_code
                                                              AND m.school_code = cm.school_code)""")
        self._history("""
            SELECT 'community_member', m.code || '/' || m.school_code, 'changed',
                   jsonb_build_object('community_code', m.code, 'school_code', m.school_code, 'role', cm.role,
                                      'joined_on', cm.joined_on),
                   jsonb_build_object('community_code', m.code, 'school_code', m.school_code, 'role', m.role,
                                      'joined_on', cm.joined_on)
            FROM imp_member m JOIN community_member cm ON cm.community_code = m.code AND cm.school_code = m.school_code
            WHERE cm.role <> m.role""")
        self.cur.execute("""
            UPDATE community_member cm SET role = m.role FROM imp_member m
            WHERE cm.community_code = m.code AND cm.school_code = m.school_code AND cm.role <> m.role""")
        self._history("""
            SELECT 'community_member', m.code || '/' || m.school_code, 'joined', NULL::jsonb,
                   jsonb_build_object('community_code', m.code, 'school_code', m.school_code, 'role', m.role,
                                      'joined_on', current_date)
            FROM imp_member m WHERE NOT EXISTS (SELECT 1 FROM community_member cm
                                                WHERE cm.community_code = m.code AND cm.school_code = m.school_code)""")
        self.cur.execute("""
            INSERT INTO community_member (community_code, school_code, role, joined_on)
            SELECT m.code, m.school_code, m.role, current_date FROM imp_member m
            WHERE NOT EXISTS (SELECT 1 FROM community_member cm
                              WHERE cm.community_code = m.code AND cm.school_code = m.school_code)""")

    def _write_devices(self) -> None:
        record = ("id", "kind", "school_code", "room", "vendor", "model", "installed_on")
        values = ("school_code", "room", "vendor", "model", "installed_on")
        self._history(f"""
            SELECT 'device', i.id,
                   CASE WHEN d.id IS NULL THEN 'created'
                        WHEN (d.school_code, d.room) <> (i.school_code, i.room) THEN 'moved' ELSE 'changed' END,
                   CASE WHEN d.id IS NOT NULL THEN {self._json('d', record)} END, {self._json('i', record)}
            FROM imp_device i LEFT JOIN device_all d ON d.id = i.id
            WHERE d.id IS NULL OR {self._distinct('d', 'i', values)}""")  # noqa: S608
        self._history("""
            SELECT 'device', i.id, 'returned',
                   jsonb_build_object('retired_at', d.retired_at, 'retired_reason', d.retired_reason),
                   jsonb_build_object('retired_at', NULL, 'retired_reason', NULL)
            FROM imp_device i JOIN device_all d ON d.id = i.id WHERE i.status = 'active' AND d.retired_at IS NOT NULL""")
        self._history(f"""
            SELECT 'device', i.id, 'retired', jsonb_build_object('retired_at', NULL, 'retired_reason', NULL),
                   jsonb_build_object('retired_at', now(), 'retired_reason', '{RETIRED_REASON}')
            FROM imp_device i LEFT JOIN device_all d ON d.id = i.id
            WHERE i.status = 'retired' AND d.retired_at IS NULL""")  # noqa: S608
        self.cur.execute("""
            INSERT INTO device_all (id, kind, school_code, room, vendor, model, installed_on, retired_at, retired_reason)
            SELECT id, kind, school_code, room, vendor, model, installed_on,
                   CASE WHEN status = 'retired' THEN now() END, CASE WHEN status = 'retired' THEN %s END
            FROM imp_device i WHERE NOT EXISTS (SELECT 1 FROM device_all d WHERE d.id = i.id)""", (RETIRED_REASON,))
        self.cur.execute(f"""
            UPDATE device_all d SET school_code = i.school_code, room = i.room, vendor = i.vendor, model = i.model,
                   installed_on = i.installed_on,
                   retired_at = CASE WHEN i.status = 'retired' THEN coalesce(d.retired_at, now())
                                     WHEN i.status = 'active' THEN NULL ELSE d.retired_at END,
                   retired_reason = CASE WHEN i.status = 'retired' THEN coalesce(d.retired_reason, %s)
                                         WHEN i.status = 'active' THEN NULL ELSE d.retired_reason END
            FROM imp_device i WHERE d.id = i.id AND ({self._device_differs()})""", (RETIRED_REASON,))  # noqa: S608

    def _write_users(self) -> None:
        new = [(r, u, n, role, lv, c, p) for r, u, n, role, lv, c, p in _rows(
            self.users, ["username", "display_name", "role", "scope_level", "scope_code", "password"])
            if u not in self.existing_users]
        passwords = {u: (p, False) if p is not None else (policy.generate(u), True) for _r, u, *_x, p in new}
        with ThreadPoolExecutor(max_workers=2) as pool:  # Argon2 releases the GIL: both cores hash
            hashes = dict(zip(passwords, pool.map(lambda item: hash_password(item[0]), passwords.values()),
                              strict=True))
        self.cur.executemany(
            "INSERT INTO app_user (username, display_name, password_hash, role, scope_level, scope_code, "
            "must_change_password, password_set_at, created_by) VALUES (%s, %s, %s, %s, %s, %s, true, now(), %s)",
            [(u, n, hashes[u], role, lv, c, self.actor) for _r, u, n, role, lv, c, _p in new])
        history = [(u, None, json.dumps({"username": u, "display_name": n, "role": role, "scope_level": lv,
                                         "scope_code": c}, ensure_ascii=False), "created")
                   for _r, u, n, role, lv, c, _p in new]
        changed = []
        for _r, u, n, role, lv, c in _rows(self.users, ["username", "display_name", "role", "scope_level", "scope_code"]):
            old = self.existing_users.get(u)
            if old is not None and tuple(old[1:]) != (n, role, lv, c):
                changed.append((n, role, lv, c, u))
                keys = ("username", "display_name", "role", "scope_level", "scope_code")
                history.append((u, json.dumps(dict(zip(keys, old, strict=True)), ensure_ascii=False),
                                json.dumps(dict(zip(keys, (u, n, role, lv, c), strict=True)), ensure_ascii=False),
                                "changed"))
        self.cur.executemany("UPDATE app_user SET display_name = %s, role = %s, scope_level = %s, scope_code = %s "
                             "WHERE username = %s", changed)
        self.cur.executemany(
            "INSERT INTO registry_history (entity, key, change, before, after, changed_by, source) "
            "VALUES ('user', %s, %s, %s::jsonb, %s::jsonb, %s, 'import')",
            [(u, change, before, after, self.actor) for u, before, after, change in history])
        self.out.passwords = [{"username": u, "password": p} for u, (p, generated) in passwords.items() if generated]

    def _audit(self) -> None:
        detail = {"file": storable(self.filename)[:200], "sha256": self.sha256, "rows": self.rows,
                  "changes": self.out.changes, "generated_passwords": len(self.out.passwords)}
        self.cur.execute("INSERT INTO audit_log (username, action, target, detail) VALUES (%s, %s, %s, %s)",
                         (self.actor, "registry.import", storable(self.filename)[:200],
                          json.dumps(detail, ensure_ascii=False)))
