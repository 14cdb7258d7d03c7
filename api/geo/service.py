"""A scope's map: the boundaries of its children from the division data, or its schools and their state."""

from datetime import UTC, datetime

from psycopg import Connection, sql

from api.auth.models import User
from api.geo import shapes
from api.geo.models import Boundary, MapArea, MapSchool, ScopeMap
from api.metrics.settings import metrics_settings
from api.scopes.access import bounded
from api.scopes.models import Scope, ScopeRef
from api.scopes.service import children
from rollups.school_now import ensure_fresh

# Each school of the scope (within the user's bounds) with its devices now and its open alerts. Open means
# firing or acknowledged and not suppressed behind a root cause, as the patrol's per-school view counts them.
_SCHOOLS = """
WITH sc AS (SELECT s.code, s.name, s.county_code, s.latitude, s.longitude, s.students FROM school s WHERE {where}),
now AS (SELECT n.school_code, sum(n.devices) AS devices, sum(n.online) AS online
        FROM school_now n JOIN sc ON sc.code = n.school_code GROUP BY 1),
open AS (SELECT a.school_code, count(*) AS alerts, bool_or(a.rule_id = 'gateway_offline') AS cut_off
         FROM alert a JOIN sc ON sc.code = a.school_code
         WHERE a.state IN ('firing', 'acknowledged') AND a.inhibited_by IS NULL GROUP BY 1)
SELECT sc.code, sc.name, sc.county_code, sc.latitude, sc.longitude, sc.students,
       coalesce(now.devices, 0)::int AS devices, coalesce(now.online, 0)::int AS online,
       coalesce(open.alerts, 0)::int AS alerts, coalesce(open.cut_off, false) AS cut_off
FROM sc LEFT JOIN now ON now.school_code = sc.code LEFT JOIN open ON open.school_code = sc.code
ORDER BY sc.code
"""


def state_of(devices: int, online: int, alerts: int, cut_off: bool) -> str:
    """offline (devices, none online, or the gateway's offline alert open), faults (open alerts), fine,
    or no_devices."""
    if devices and (online == 0 or cut_off):
        return "offline"
    if alerts:
        return "faults"
    return "fine" if devices else "no_devices"


def _areas(refs: list[ScopeRef]) -> tuple[float | None, list[MapArea], list[shapes.Shape]]:
    """The divisions with their boundaries, simplified together (once per group, see api.geo.shapes); the
    tolerance and the shapes drawn."""
    tolerance, simplified = shapes.simplified(tuple(sorted({r.code for r in refs})))
    areas = [MapArea(level=r.level, code=r.code, name=r.name, boundary=Boundary(
        coordinates=shapes.as_coordinates(simplified[r.code])) if r.code in simplified else None) for r in refs]
    return tolerance, areas, [simplified[r.code] for r in refs if r.code in simplified]


def _bounds(drawn: list[shapes.Shape], schools: list[MapSchool]) -> tuple[float, float, float, float] | None:
    """[west, south, east, north] around the shapes and the schools placed."""
    points = [(s.longitude, s.latitude) for s in schools if s.longitude is not None and s.latitude is not None]
    boxes = ([shapes.bounds(drawn)] if drawn else []) + [(x, y, x, y) for x, y in points]
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _schools(conn: Connection, scope: Scope, user: User) -> list[MapSchool]:
    where, params = bounded(scope.level, user=user)
    rows = conn.execute(sql.SQL(_SCHOOLS).format(where=where), {"scope_code": scope.code, **params}).fetchall()
    return [MapSchool(**{k: v for k, v in r.items() if k != "cut_off"},
                      state=state_of(r["devices"], r["online"], r["alerts"], r["cut_off"])) for r in rows]


def _counties(conn: Connection, codes: set[str]) -> list[ScopeRef]:
    rows = conn.execute("SELECT 'county' AS level, code, name FROM county WHERE code = ANY(%s) ORDER BY code",
                        (sorted(codes),)).fetchall()
    return [ScopeRef(**r) for r in rows]


def scope_map(conn: Connection, scope: Scope, user: User) -> ScopeMap:
    """The map of a scope as the user may see it (see ScopeMap)."""
    if scope.level in ("province", "city"):
        tolerance, areas, drawn = _areas(children(conn, scope, user))
        return ScopeMap(scope=scope, source=shapes.source(), tolerance=tolerance, children=areas, outlines=[],
                        schools=[], bounds=_bounds(drawn, []), as_of=None)
    as_of = ensure_fresh(conn, metrics_settings().now_max_age_s) or datetime.now(UTC)
    schools = _schools(conn, scope, user)
    counties = {s.county_code for s in schools} | ({scope.code} if scope.level == "county" else set())
    tolerance, outlines, drawn = _areas(_counties(conn, counties))
    return ScopeMap(scope=scope, source=shapes.source(), tolerance=tolerance, children=[], outlines=outlines,
                    schools=schools, bounds=_bounds(drawn, schools), as_of=as_of)
