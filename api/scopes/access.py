"""The one place where a user's scope bounds what they can see.

A user may open any scope at or below their own; every aggregate is further limited
to the schools inside the user's scope (a community can reach across county lines).
Anything outside answers 404, so a user never learns that it exists.
"""

from fastapi import HTTPException, status
from psycopg import Connection, sql

from api.auth.models import User
from api.scopes.models import Scope, ScopeRef
from core.scope import CHILD_LEVEL, LEVELS, lineage, path_query, schools_of

NOT_FOUND = HTTPException(status.HTTP_404_NOT_FOUND, "no such scope")


def bounded(level: str, scope_param: str = "scope_code", user: User | None = None) -> tuple[sql.Composable, dict]:
    """Predicate for the schools of a scope, limited to the user's own scope; and its extra params."""
    predicate = schools_of(level, scope_param)
    if user is None:
        return predicate, {}
    return sql.SQL("({}) AND ({})").format(predicate, schools_of(user.scope_level, "user_scope_code")), {
        "user_scope_code": user.scope_code
    }


def _in_scope(conn: Connection, level: str, code: str, school: str) -> bool:
    query = sql.SQL("SELECT 1 FROM school s WHERE s.code = %(school)s AND {}").format(schools_of(level, "code"))
    return conn.execute(query, {"school": school, "code": code}).fetchone() is not None


def resolve(conn: Connection, user: User, level: str, code: str) -> Scope:
    """The scope if it exists and the user may see it; otherwise 404."""
    if level not in LEVELS:
        raise NOT_FOUND
    row = conn.execute(path_query(level), {"code": code}).fetchone()
    if row is None:
        raise NOT_FOUND
    path = [ScopeRef(level=lv, code=row[f"code{i}"], name=row[f"name{i}"])
            for i, lv in reversed(list(enumerate(lineage(level))))]
    visible = any(p.level == user.scope_level and p.code == user.scope_code for p in path)
    if not visible and user.scope_level == "community" and level == "school":
        visible = _in_scope(conn, user.scope_level, user.scope_code, code)
    if not visible:
        raise NOT_FOUND
    me = path[-1]
    return Scope(level=me.level, code=me.code, name=me.name, parents=path[:-1], child_level=CHILD_LEVEL[level])
