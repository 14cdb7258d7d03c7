"""Target shapes."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, Strict

from api.inputs import DbDate, DbDouble, DbText
from api.metrics.catalogue import FIGURES
from api.metrics.models import RankedChild, TargetStatus
from api.scopes.models import ScopeRef


class TargetIn(BaseModel):
    """A target to set on a scope."""

    figure: Literal[tuple(FIGURES)] = Field(examples=["board_online_rate"],  # type: ignore[valid-type]
                                            description="a key of the figure catalogue (GET /api/v1/figures)")
    comparator: Literal[">=", "<="] = ">="
    value: Annotated[DbDouble, Strict()] = Field(examples=[0.95], description="in the figure's unit (ratios as 0–1)")
    deadline: DbDate = Field(examples=["2026-12-31"])
    note: DbText | None = Field(default=None, max_length=500)


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
