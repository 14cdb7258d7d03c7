"""The scopes above a scope, top down: a target set on any of them applies to it."""

from psycopg import Connection

from api.scopes.models import Scope, ScopeRef

_COUNTIES = """
    SELECT k.code, k.name, c.code AS city_code, c.name AS city_name, p.code AS province_code,
           p.name AS province_name
    FROM county k JOIN city c ON c.code = k.city_code JOIN province p ON p.code = c.province_code
    WHERE k.code = ANY(%s)"""


def scope_path(scope: Scope) -> list[ScopeRef]:
    """The scope's parents and the scope itself, top down."""
    return [*scope.parents, ScopeRef(level=scope.level, code=scope.code, name=scope.name)]


def child_path(path: list[ScopeRef], child: ScopeRef) -> list[ScopeRef]:
    """A child's path: its parent's path and the child."""
    return [*path, ScopeRef(level=child.level, code=child.code, name=child.name)]


def county_paths(conn: Connection, codes: list[str]) -> dict[str, list[ScopeRef]]:
    """Province, city and county of each county code, top down (one query for all of them)."""
    paths = {}
    for r in conn.execute(_COUNTIES, (list(codes),)):
        paths[r["code"]] = [ScopeRef(level="province", code=r["province_code"], name=r["province_name"]),
                            ScopeRef(level="city", code=r["city_code"], name=r["city_name"]),
                            ScopeRef(level="county", code=r["code"], name=r["name"])]
    return paths


def lies_in(path: list[ScopeRef], scope: ScopeRef) -> bool:
    """True when the scope is on the path (the path's last scope lies in it)."""
    return any((p.level, p.code) == (scope.level, scope.code) for p in path)
