"""Community figures: set-based SQL over the registry, device state and lesson sessions.

Attribution: coverage counts the compulsory-education schools of the scope; community
figures (count, kind, size, cross-county) count the communities whose lead school is in
the scope, and a community's size counts all its member schools (the cap is a property
of the community). Lists and detail show a community when any of its schools is inside
the user's scope, and only the member schools inside it.
"""

import math
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from fastapi import HTTPException, status
from psycopg import Connection, sql

from api.auth.models import User
from api.communities.models import (
    ChildCoverage,
    CommunityDetail,
    CommunityRow,
    Coverage,
    CoverageFigures,
    MemberRow,
)
from api.communities.settings import community_settings
from api.metrics.models import period_info
from api.metrics.settings import metrics_settings
from api.scopes.access import bounded
from api.scopes.models import Scope
from api.scopes.service import children
from core.period import Period
from core.scope import child_key
from rollups.school_now import ensure_fresh

COMMUNITY_KINDS = ("merged", "co_built", "collaborative", "mixed")

# Queries count as of a day, %(as_of)s (NULL: whatever is recorded): the memberships joined by
# then (or with no date) of the communities founded by then (or with no date).

_SCHOOLS = """
    SELECT {key} AS child, count(*) AS compulsory_schools,
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM community_member m JOIN community c ON c.code = m.community_code
                                          WHERE m.school_code = s.code
                                            AND (%(as_of)s::date IS NULL OR m.joined_on IS NULL OR m.joined_on <= %(as_of)s::date)
                                            AND (%(as_of)s::date IS NULL OR c.founded_on IS NULL OR c.founded_on <= %(as_of)s::date)))
               AS covered_schools
    FROM school s
    WHERE {where} AND s.stage IN ('primary', 'junior', 'nine_year', 'teaching_point')
    GROUP BY 1"""

_COMMUNITIES = """
    SELECT {key} AS child, c.kind,
           (SELECT count(*) FROM community_member m WHERE m.community_code = c.code AND m.role = 'member'
                                                      AND (%(as_of)s::date IS NULL OR m.joined_on IS NULL OR m.joined_on <= %(as_of)s::date))
               AS members,
           EXISTS (SELECT 1 FROM community_member m JOIN school ms ON ms.code = m.school_code
                   WHERE m.community_code = c.code AND ms.county_code <> c.county_code
                         AND (%(as_of)s::date IS NULL OR m.joined_on IS NULL OR m.joined_on <= %(as_of)s::date))
               AS cross_county
    FROM community c JOIN school s ON s.code = c.lead_school_code
    WHERE {where} AND (%(as_of)s::date IS NULL OR c.founded_on IS NULL OR c.founded_on <= %(as_of)s::date)"""

# Communities with a school inside the bound, the bound's member schools of each, their
# devices now, and the held lessons each received from its lead school from %(since)s (to %(through)s).
_LIST = """
    WITH visible AS (
        SELECT m.community_code, m.school_code, m.role, m.joined_on
        FROM community_member m JOIN school s ON s.code = m.school_code
        JOIN community c ON c.code = m.community_code
        WHERE {where} AND (%(as_of)s::date IS NULL OR m.joined_on IS NULL OR m.joined_on <= %(as_of)s::date)
          AND (%(as_of)s::date IS NULL OR c.founded_on IS NULL OR c.founded_on <= %(as_of)s::date)
    ), activity AS (
        SELECT v.community_code, v.school_code, count(DISTINCT (ls.lesson_id, ls.day)) AS held
        FROM visible v
        JOIN community c ON c.code = v.community_code
        JOIN device rd ON rd.school_code = v.school_code
        JOIN lesson_session_receiver lr ON lr.device_id = rd.id AND lr.joined_at IS NOT NULL AND lr.day >= %(since)s
             AND (%(through)s::date IS NULL OR lr.day <= %(through)s::date)
        JOIN lesson_session ls ON ls.lesson_id = lr.lesson_id AND ls.day = lr.day AND ls.status = 'held'
        JOIN remote_lesson l ON l.id = ls.lesson_id
        JOIN device md ON md.id = l.main_device_id AND md.school_code = c.lead_school_code
        WHERE v.role = 'member'
        GROUP BY 1, 2
    )
    SELECT v.community_code, v.school_code, v.role, v.joined_on, s.name AS school_name, s.county_code,
           s.locale, s.stage, coalesce(n.devices, 0) AS devices, coalesce(n.online, 0) AS online,
           a.held AS lessons_held
    FROM visible v
    JOIN school s ON s.code = v.school_code
    LEFT JOIN (SELECT school_code, sum(devices) AS devices, sum(online) AS online
               FROM school_now GROUP BY 1) AS n ON n.school_code = v.school_code
    LEFT JOIN activity a ON a.community_code = v.community_code AND a.school_code = v.school_code
    ORDER BY v.community_code, v.role, v.school_code"""


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def _coverage(schools: dict, communities: list[dict]) -> CoverageFigures:
    settings = community_settings()
    total, covered = schools.get("compulsory_schools", 0), schools.get("covered_schools", 0)
    rate = _ratio(covered, total)
    sizes = [c["members"] for c in communities]
    # The targets are attached by api/targets (attach_coverage), from the target table.
    return CoverageFigures(
        compulsory_schools=total, covered_schools=covered, coverage_rate=rate,
        communities=len(communities), by_kind={k: sum(c["kind"] == k for c in communities) for k in COMMUNITY_KINDS},
        avg_members=round(sum(sizes) / len(sizes), 2) if sizes else None, max_members=max(sizes, default=None),
        over_cap=sum(size > settings.member_cap for size in sizes), member_cap=settings.member_cap,
        cross_county=sum(c["cross_county"] for c in communities),
    )


def _as_of(period: Period | None) -> date | None:
    """The day memberships are counted on: the last day of the period begun; None for now (all recorded)."""
    return None if period is None or period.is_now else period.elapsed_last


def coverage(conn: Connection, scope: Scope, user: User, period: Period | None = None) -> Coverage:
    """Coverage of compulsory-education schools and the shape of the communities, for the scope and each
    child: now, or as of the end of a period (memberships joined and communities founded by then)."""
    where, extra = bounded(scope.level, user=user)
    key = child_key(scope.level)
    params = {"scope_code": scope.code, **extra, "as_of": _as_of(period)}
    schools = {r.pop("child"): r for r in conn.execute(sql.SQL(_SCHOOLS).format(key=key, where=where), params)}
    communities: dict[str, list[dict]] = defaultdict(list)
    for row in conn.execute(sql.SQL(_COMMUNITIES).format(key=key, where=where), params):
        communities[row.pop("child")].append(row)
    every_school = {"compulsory_schools": sum(r["compulsory_schools"] for r in schools.values()),
                    "covered_schools": sum(r["covered_schools"] for r in schools.values())}
    kids = [ChildCoverage(**kid.model_dump(), figures=_coverage(schools.get(kid.code, {}), communities[kid.code]))
            for kid in children(conn, scope, user)]
    answer = Coverage(scope=scope, figures=_coverage(every_school, [c for cs in communities.values() for c in cs]),
                      children=kids)
    return answer if _as_of(period) is None else answer.model_copy(update={"period": period_info(period)})


def _communities(conn: Connection, where: sql.Composable, params: dict,
                 period: Period | None = None) -> list[CommunityDetail]:
    """The communities with a school inside the bound, each with its members inside it; their lessons
    over the last activity weeks, or over the days of a period (members as of its end)."""
    ensure_fresh(conn, metrics_settings().now_max_age_s)
    if _as_of(period) is None:
        weeks = community_settings().activity_weeks
        since, through = datetime.now(UTC).date() - timedelta(weeks=weeks), None
    else:
        weeks, since, through = math.ceil(period.days / 7), period.first, period.last
    members: dict[str, list[MemberRow]] = defaultdict(list)
    for r in conn.execute(sql.SQL(_LIST).format(where=where),
                          {**params, "since": since, "through": through, "as_of": _as_of(period)}):
        code = r.pop("community_code")
        held = r.pop("lessons_held")
        held = None if r["role"] == "lead" else held or 0
        members[code].append(MemberRow(**r, online_rate=_ratio(r["online"], r["devices"]), lessons_held=held))
    if not members:
        return []
    rows = conn.execute("SELECT code, name, kind, county_code, founded_on, lead_school_code FROM community "
                        "WHERE code = ANY(%s) ORDER BY code", (list(members),)).fetchall()
    out = []
    for c in rows:
        schools = members[c["code"]]
        lead = next((m for m in schools if m.school_code == c["lead_school_code"]), None)
        rest = [m for m in schools if m.role == "member"]
        devices, online = sum(m.devices for m in rest), sum(m.online for m in rest)
        out.append(CommunityDetail(
            **{k: c[k] for k in ("code", "name", "kind", "county_code", "founded_on")},
            lead_school_code=lead.school_code if lead else None, lead_school_name=lead.school_name if lead else None,
            members=len(rest), member_devices=devices, member_online=online,
            member_online_rate=_ratio(online, devices),
            pairs_active=sum(1 for m in rest if m.lessons_held), lessons_held=sum(m.lessons_held or 0 for m in rest),
            activity_weeks=weeks, member_schools=schools))
    return out


def list_communities(conn: Connection, scope: Scope, user: User, period: Period | None = None) -> list[CommunityRow]:
    """Communities with a school inside the scope, in code order (as of the end of a period, if given)."""
    where, extra = bounded(scope.level, user=user)
    details = _communities(conn, where, {"scope_code": scope.code, **extra}, period)
    return [CommunityRow(**d.model_dump(exclude={"activity_weeks", "member_schools"})) for d in details]


def get_community(conn: Connection, user: User, code: str, period: Period | None = None) -> CommunityDetail:
    """A community with its member schools inside the user's scope; 404 when none is."""
    where, extra = bounded("community", user=user)
    found = [c for c in _communities(conn, where, {"scope_code": code, **extra}, period) if c.code == code]
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such community")
    return found[0]
