"""Shapes of figures, rankings and trends."""

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.scopes.models import Scope, ScopeRef


class Bands(BaseModel):
    """Where a rate turns from good to fair to poor (METRICS_*_GOOD, METRICS_*_FAIR)."""

    good: float = Field(description="at or above: good")
    fair: float = Field(description="at or above (and below good): fair; below: poor")


class FigureInfo(BaseModel):
    """A figure of the catalogue."""

    key: str
    zh: str
    en: str
    unit: str
    better: Literal["higher", "lower"]
    description: str
    bands: Bands | None = Field(None, description="the colour bands of a rate, where the bureau sets them")


class TargetStatus(BaseModel):
    """How a value stands against the target that applies to it."""

    target_id: int
    comparator: Literal[">=", "<="]
    value: float
    deadline: date
    set_on: ScopeRef
    gap: float | None = Field(description="how far the value is from the target, in the figure's unit (≤ 0: met)")
    status: Literal["met", "behind", "missed", "no_data"]


class FigureValue(BaseModel):
    """One figure's value for one scope."""

    value: float | None
    num: float | None
    den: float | None
    target: TargetStatus | None = None


class ChildFigures(ScopeRef):
    """A child scope's figures."""

    figures: dict[str, FigureValue]


class Figures(BaseModel):
    """Figures for a scope and each of its children."""

    scope: Scope
    as_of: datetime
    figures: dict[str, FigureValue]
    children: list[ChildFigures]


class RankedChild(ScopeRef):
    """A child in a ranking."""

    rank: int
    value: float | None
    target: TargetStatus | None = None


class Ranking(BaseModel):
    """Children ordered by a figure."""

    scope: Scope
    figure: FigureInfo
    order: Literal["worst", "best"]
    items: list[RankedChild]


class TrendPoint(BaseModel):
    """A figure's value in one time bucket."""

    bucket: datetime
    value: float | None
    num: float | None
    den: float | None


class Trend(BaseModel):
    """A figure over time for a scope."""

    scope: Scope
    figure: FigureInfo
    bucket: Literal["hour", "day", "week"]
    points: list[TrendPoint]
