"""The scope: province › city › county › school, and the community (教联体), in one place.

Each level has a table of its own name with `code` and `name`. A level's table names the
administrative level above it as `{parent}_code` (a community names its county), and
`school` holds the code of every administrative level above it, so the schools of a scope
are one predicate over `school`; a community's are its members, which may lie in several
counties. The SQL twin of `schools_of` is `scope_schools(level, code)` and its test
`school_in_scope(level, code, school)` (sql/014_scope.sql), which the patrol calls.
"""

from typing import Literal, get_args

from psycopg import sql

Level = Literal["province", "city", "county", "school", "community"]
LEVELS: tuple[str, ...] = get_args(Level)
ADMINISTRATIVE = ("province", "city", "county", "school")  # top down
PARENT = {"city": "province", "county": "city", "school": "county", "community": "county"}
CHILD_LEVEL: dict[str, str | None] = {"province": "city", "city": "county", "county": "school", "school": None,
                                      "community": "school"}
# The column of `school` holding a school's code at each administrative level.
SCHOOL_COLUMN = {level: "code" if level == "school" else f"{level}_code" for level in ADMINISTRATIVE}


def parent_column(level: str) -> str:
    """The column by which the table of `level` names its administrative parent."""
    return f"{PARENT[level]}_code"


def lineage(level: str) -> list[str]:
    """The level and every administrative level above it, bottom up: community, county, city, province."""
    chain = [level]
    while chain[-1] in PARENT:
        chain.append(PARENT[chain[-1]])
    return chain


def schools_of(level: str, param: str, alias: str = "s") -> sql.Composable:
    """Predicate on `school` (as `alias`) selecting the schools of a scope whose code is parameter `param`."""
    code = sql.Placeholder(param)
    if level == "community":
        return sql.SQL("{} IN (SELECT school_code FROM community_member WHERE community_code = {})").format(
            sql.Identifier(alias, "code"), code)
    return sql.SQL("{} = {}").format(sql.Identifier(alias, SCHOOL_COLUMN[level]), code)


def child_key(level: str, alias: str = "s") -> sql.Composable:
    """The column of `school` (as `alias`) naming the child of a scope of `level` each school lies in."""
    return sql.Identifier(alias, SCHOOL_COLUMN[CHILD_LEVEL[level] or "school"])


def path_query(level: str) -> sql.Composable:
    """One row: `code{i}` and `name{i}` of the scope %(code)s (i = 0) and of each level above it, as in `lineage`."""
    chain = lineage(level)
    t = [sql.Identifier(f"t{i}") for i in range(len(chain))]
    columns = sql.SQL(", ").join(sql.SQL("{}.code AS {}, {}.name AS {}").format(
        t[i], sql.Identifier(f"code{i}"), t[i], sql.Identifier(f"name{i}")) for i in range(len(chain)))
    joins = sql.SQL("").join(sql.SQL(" JOIN {} {} ON {}.code = {}.{}").format(
        sql.Identifier(up), t[i], t[i], t[i - 1], sql.Identifier(parent_column(chain[i - 1])))
        for i, up in enumerate(chain[1:], start=1))
    return sql.SQL("SELECT {} FROM {} {}{} WHERE {}.code = %(code)s").format(
        columns, sql.Identifier(level), t[0], joins, t[0])


def children_query(level: str) -> sql.Composable:
    """(level, code, name) of the children of a province or city %(scope_code)s, in code order."""
    child = CHILD_LEVEL[level]
    return sql.SQL("SELECT {} AS level, code, name FROM {} WHERE {} = %(scope_code)s ORDER BY code").format(
        sql.Literal(child), sql.Identifier(child), sql.Identifier(parent_column(child)))
