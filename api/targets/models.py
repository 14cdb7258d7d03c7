"""Target shapes."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, Strict

from api.inputs import DbDate, DbDouble, DbText
from api.metrics.models import RankedChild, TargetStatus
from api.scopes.models import ScopeRef
from api.targets.measures import TARGETABLE


class TargetIn(BaseModel):
    """A target to set on a scope."""

    figure: Literal[TARGETABLE] = Field(  # type: ignore[valid-type]
        examples=["board_online_rate"],
        description="a key of GET /api/v1/targets-catalogue: a figure of the catalogue or a measure "
                    "(community_coverage, equity_cv_primary, equity_cv_junior, lesson_opening_rate, "
                    "teaching_point_reach)")
    comparator: Literal[">=", "<="] = Field(">=", description="a measure takes only the comparator of its "
                                                                "direction: <= where lower is better")
    value: Annotated[DbDouble, Strict()] = Field(examples=[0.95], description="in the figure's unit (ratios as 0–1)")
    deadline: DbDate = Field(examples=["2026-12-31"])
    note: DbText | None = Field(default=None, max_length=500)


class Target(TargetIn):
    """A target as stored."""

    id: int
    set_on: ScopeRef
    set_by: str
    set_at: datetime


class Targetable(BaseModel):
    """A key a target can be set on: a figure of the catalogue or a measure of another context."""

    key: str
    kind: Literal["figure", "measure"]
    zh: str
    en: str
    unit: str
    better: Literal["higher", "lower"]
    description: str


class TargetProgress(BaseModel):
    """A target, where the scope stands, how long is left, and its children's league table."""

    target: Target
    scope_value: float | None
    scope_status: TargetStatus
    days_left: int = Field(description="days from today (the schools' time zone) to the deadline; negative: "
                                       "that many days past it")
    overdue: bool = Field(description="the deadline has passed and the scope has not met the target")
    children: list[RankedChild] = Field(description="every child judged against this target, worst first; "
                                                    "children without a value last")
