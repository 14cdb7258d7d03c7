"""The one place where a user's scope bounds what they can see.

A user may open any scope at or below their own; every aggregate is further limited
to the schools inside the user's scope (a community can reach across county lines).
Anything outside answers 404, so a user never learns that it exists.
"""

from fastapi import HTTPException, status
from psycopg import Connection, sql

from api.auth.models import User
from api.scopes.models import CHILD_LEVEL, Scope, ScopeRef

NOT_FOUND = HTTPException(status.HTTP_404_NOT_FOUND, "no such scope")

# Predicate over the `school` table (alias s) selecting the schools of a scope.
_SCHOOLS_OF = {
    "province": "s.province_code = {}",
    "city": "s.city_code = {}",
    "county": "s.county_code = {}",
    "school": "s.code = {}",
    "community": "s.code IN (SELECT school_code FROM community_member WHERE community_code = {})",
}

# The scope and the path above it, top down, as (level, code, name) rows.
_PATH = {
    "province": """SELECT 'province' AS level, code, name FROM province WHERE code = %(code)s""",
    "city": """SELECT 'province' AS level, p.code, p.name FROM city c JOIN province p ON p.code = c.province_code WHERE c.code = %(code)s
               UNION ALL SELECT 'city', code, name FROM city WHERE code = %(code)s""",
    "county": """SELECT 'province' AS level, p.code, p.name FROM county k JOIN province p ON p.code = k.province_code WHERE k.code = %(code)s
                 UNION ALL SELECT 'city', c.code, c.name FROM county k JOIN city c ON c.code = k.city_code WHERE k.code = %(code)s
                 UNION ALL SELECT 'county', code, name FROM county WHERE code = %(code)s""",
    "school": """SELECT 'province' AS level, p.code, p.name FROM school s JOIN province p ON p.code = s.province_code WHERE s.code = %(code)s
                 UNION ALL SELECT 'city', c.code, c.name FROM school s JOIN city c ON c.code = s.city_code WHERE s.code = %(code)s
                 UNION ALL SELECT 'county', k.code, k.name FROM school s JOIN county k ON k.code = s.county_code WHERE s.code = %(code)s
                 UNION ALL SELECT 'school', code, name FROM school WHERE code = %(code)s""",
    "community": """SELECT 'province' AS level, p.code, p.name FROM community m JOIN county k ON k.code = m.county_code JOIN province p ON p.code = k.province_code WHERE m.code = %(code)s
                    UNION ALL SELECT 'city', c.code, c.name FROM community m JOIN county k ON k.code = m.county_code JOIN city c ON c.code = k.city_code WHERE m.code = %(code)s
                    UNION ALL SELECT 'county', k.code, k.name FROM community m JOIN county k ON k.code = m.county_code WHERE m.code = %(code)s
                    UNION ALL SELECT 'community', code, name FROM community WHERE code = %(code)s""",
}


def schools_of(level: str, param: str) -> sql.Composable:
    """SQL predicate on alias `s` selecting the schools of a scope given by a named parameter."""
    return sql.SQL(_SCHOOLS_OF[level]).format(sql.Placeholder(param))


def bounded(level: str, scope_param: str = "scope_code", user: User | None = None) -> tuple[sql.Composable, dict]:
    """Predicate for the schools of a scope, limited to the user's own scope; and its extra params."""
    predicate = schools_of(level, scope_param)
    if user is None:
        return predicate, {}
    return sql.SQL("({}) AND ({})").format(predicate, schools_of(user.scope_level, "user_scope_code")), {
        "user_scope_code": user.scope_code
    }


def _is_member(conn: Connection, community: str, school: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM community_member WHERE community_code = %s AND school_code = %s", (community, school)
    ).fetchone()
    return row is not None


def resolve(conn: Connection, user: User, level: str, code: str) -> Scope:
    """The scope if it exists and the user may see it; otherwise 404."""
    if level not in _PATH:
        raise NOT_FOUND
    path = [ScopeRef(**r) for r in conn.execute(_PATH[level], {"code": code}).fetchall()]
    if not path or path[-1].level != level:
        raise NOT_FOUND
    visible = any(p.level == user.scope_level and p.code == user.scope_code for p in path)
    if not visible and user.scope_level == "community" and level == "school":
        visible = _is_member(conn, user.scope_code, code)
    if not visible:
        raise NOT_FOUND
    me = path[-1]
    return Scope(level=me.level, code=me.code, name=me.name, parents=path[:-1], child_level=CHILD_LEVEL[level])
