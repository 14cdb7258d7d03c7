"""Target shapes."""

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.metrics.models import RankedChild, TargetStatus
from api.scopes.models import ScopeRef


class TargetIn(BaseModel):
    """A target to set on a scope."""

    figure: str = Field(examples=["board_online_rate"])
    comparator: Literal[">=", "<="] = ">="
    value: float = Field(examples=[0.95], description="in the figure's unit (ratios as 0–1)")
    deadline: date = Field(examples=["2026-12-31"])
    note: str | None = Field(default=None, max_length=500)


class Target(TargetIn):
    """A target as stored."""

    id: int
    set_on: ScopeRef
    set_by: str
    set_at: datetime


class TargetProgress(BaseModel):
    """A target, where the scope stands, and its children's league table."""

    target: Target
    scope_value: float | None
    scope_status: TargetStatus
    children: list[RankedChild]
