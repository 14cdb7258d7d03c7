"""Shapes of figures, rankings and trends."""

from datetime import date, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from api.scopes.models import Scope, ScopeRef
from core.period import Period


class OmitUnset(BaseModel):
    """A model whose `OPTIONAL` fields are left out of its JSON unless they were given: answers to a
    request without a period stay exactly what they were before periods existed."""

    OPTIONAL: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _leave_out_unasked(self, handler):
        data = handler(self)
        for name in self.OPTIONAL - self.model_fields_set:
            data.pop(name, None)
        return data


class PeriodSpan(BaseModel):
    """Whole days in the schools' time zone and the instants they begin and end (core/period.py)."""

    model_config = ConfigDict(populate_by_name=True)

    label: str = Field(description="now, today, yesterday, this_week, last_week, this_month, last_month, "
                                   "this_term, custom (from/to); for a previous period also last_term or previous")
    from_: date = Field(alias="from", description="its first day")
    to: date = Field(description="its last day (inclusive)")
    start: datetime = Field(description="the local midnight beginning `from`")
    end: datetime = Field(description="the local midnight ending `to`")
    until: datetime = Field(description="what its figures run up to: `end`, or while it runs the latest "
                                        "moment with data (now, or the last rollup)")
    running: bool = Field(description="today is one of its days")
    days: int


class PeriodInfo(PeriodSpan):
    """The period figures answer for, and the one they are compared with."""

    previous: PeriodSpan | None = Field(description="the period of the same kind just before (null for now)")


def span_of(p: Period) -> PeriodSpan:
    """A period's days and instants as the API shows them."""
    return PeriodSpan(label=p.label, from_=p.first, to=p.last, start=p.start, end=p.end, until=p.until,
                      running=p.running, days=p.days)


def period_info(p: Period) -> PeriodInfo:
    """A period with the one before it, as the API shows them."""
    return PeriodInfo(**span_of(p).model_dump(), previous=span_of(p.previous) if p.previous else None)


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
    lessons: bool = Field(False, description="it can be asked for the lesson hours only (hours=lessons)")


class TargetStatus(BaseModel):
    """How a value stands against the target that applies to it."""

    target_id: int
    comparator: Literal[">=", "<="]
    value: float
    deadline: date
    set_on: ScopeRef
    gap: float | None = Field(description="how far the value is from the target, in the figure's unit (≤ 0: met)")
    status: Literal["met", "behind", "missed", "no_data"]


class FigureValue(OmitUnset):
    """One figure's value for one scope; with a period, also its value over the previous period."""

    OPTIONAL = frozenset({"previous", "previous_num", "previous_den", "change"})

    value: float | None
    num: float | None
    den: float | None
    target: TargetStatus | None = None
    previous: float | None = Field(None, description="the value over the previous period (only with a period)")
    previous_num: float | None = Field(None, description="its numerator (only with a period)")
    previous_den: float | None = Field(None, description="its denominator (only with a period)")
    change: float | None = Field(None, description="value − previous; null when either is null (only with a period)")


class ChildFigures(ScopeRef):
    """A child scope's figures."""

    figures: dict[str, FigureValue]


class Figures(OmitUnset):
    """Figures for a scope and each of its children."""

    OPTIONAL = frozenset({"period", "hours"})

    scope: Scope
    as_of: datetime
    figures: dict[str, FigureValue]
    children: list[ChildFigures]
    period: PeriodInfo | None = Field(None, description="the period the figures answer for (only with a period)")
    hours: Literal["lessons"] | None = Field(None, description="`lessons` when only the lesson hours of the "
                                                               "period's school days count (only with hours=lessons)")


class RankedChild(ScopeRef, OmitUnset):
    """A child in a ranking."""

    OPTIONAL = frozenset({"previous", "change"})

    rank: int
    value: float | None
    target: TargetStatus | None = None
    previous: float | None = Field(None, description="its value over the previous period (only with a period)")
    change: float | None = Field(None, description="value − previous (only with a period)")


class Ranking(OmitUnset):
    """Children ordered by a figure."""

    OPTIONAL = frozenset({"period", "hours"})

    scope: Scope
    figure: FigureInfo
    order: Literal["worst", "best"]
    items: list[RankedChild]
    period: PeriodInfo | None = Field(None, description="the period ranked over (only with a period)")
    hours: Literal["lessons"] | None = Field(None, description="`lessons` with hours=lessons")


class TrendPoint(BaseModel):
    """A figure's value in one time bucket."""

    bucket: datetime
    value: float | None
    num: float | None
    den: float | None


class Trend(OmitUnset):
    """A figure over time for a scope."""

    OPTIONAL = frozenset({"period", "hours"})

    scope: Scope
    figure: FigureInfo
    bucket: Literal["hour", "day", "week"]
    points: list[TrendPoint]
    period: PeriodInfo | None = Field(None, description="the range followed (only with a period)")
    hours: Literal["lessons"] | None = Field(None, description="`lessons` with hours=lessons")
