"""Community shapes: coverage figures, list rows, detail with members."""

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from api.metrics.models import OmitUnset, PeriodInfo, TargetStatus
from api.scopes.models import Scope, ScopeRef

CommunityKind = Literal["merged", "co_built", "collaborative", "mixed"]


class CoverageFigures(BaseModel):
    """Coverage and shape of the communities of one scope."""

    compulsory_schools: int = Field(description="primary, junior, nine-year schools and teaching points")
    covered_schools: int = Field(description="of which lead or member of at least one community")
    coverage_rate: float | None
    targets: list[TargetStatus] = Field(
        default_factory=list, description="the community_coverage targets of the target table that apply to the "
                                          "scope (those set on the nearest scope above or on it that has any), "
                                          "earliest deadline first, each with the scope's status and gap")
    communities: int = Field(description="communities whose lead school is in the scope")
    by_kind: dict[CommunityKind, int]
    avg_members: float | None = Field(description="member schools (lead excluded) per community")
    max_members: int | None
    over_cap: int = Field(description="communities with more member schools than the cap")
    member_cap: int
    cross_county: int = Field(description="communities with a member school outside the community's county")


class ChildCoverage(ScopeRef):
    """A child scope's coverage."""

    figures: CoverageFigures


class Coverage(OmitUnset):
    """A scope's community coverage, with each child's."""

    OPTIONAL = frozenset({"period"})

    scope: Scope
    figures: CoverageFigures
    children: list[ChildCoverage]
    period: PeriodInfo | None = Field(None, description="coverage as of the end of this period (only with a "
                                                        "period)")


class CommunityRow(BaseModel):
    """A community as listed; counts cover only member schools inside the user's scope."""

    code: str
    name: str
    kind: CommunityKind
    county_code: str
    founded_on: date | None
    lead_school_code: str | None = Field(description="null when the lead school is outside the user's scope")
    lead_school_name: str | None
    members: int = Field(description="member schools (lead excluded) inside the user's scope")
    member_devices: int
    member_online: int
    member_online_rate: float | None = Field(description="online / devices of the member schools, now")
    pairs_active: int = Field(description="members that received a held lesson from the lead in the window "
                                          "(the last activity weeks, or the days of the period asked)")
    lessons_held: int = Field(description="held sessions from the lead to members in the window (per pair)")


class MemberRow(BaseModel):
    """A member school of a community, with its devices now and its lessons from the lead."""

    school_code: str
    school_name: str
    county_code: str
    locale: str
    stage: str
    role: Literal["lead", "member"]
    joined_on: date | None
    devices: int
    online: int
    online_rate: float | None
    lessons_held: int | None = Field(description="held sessions from the lead in the window; null for the lead")


class CommunityDetail(CommunityRow):
    """A community and its member schools inside the user's scope."""

    activity_weeks: int = Field(description="weeks of the activity window (with a period: its days / 7, rounded up)")
    member_schools: list[MemberRow]
