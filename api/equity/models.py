"""Equity shapes."""

from typing import Literal

from pydantic import BaseModel, Field

from api.metrics.models import OmitUnset, PeriodInfo
from api.scopes.models import Scope, ScopeRef

Group = Literal["primary", "junior"]


class IndicatorCV(BaseModel):
    """One indicator's enrolment-weighted mean and coefficient of variation in one school group."""

    indicator: str
    schools: int
    mean: float | None
    cv: float | None = Field(description="S / mean with S = sqrt(sum(P_i/P * (X_i - mean)^2))")


class GroupEquity(BaseModel):
    """A county's school group (primary or junior) against the national bar."""

    group: Group
    schools: int
    students: int
    indicators: list[IndicatorCV]
    composite_cv: float | None = Field(description="mean of the indicators' CVs (综合差异系数)")
    bar: float
    passes: bool | None


class CountyEquity(ScopeRef):
    """Equity of one county."""

    groups: list[GroupEquity]


class LocaleGap(BaseModel):
    """An indicator's enrolment-weighted mean in urban, town and rural schools."""

    indicator: str
    urban: float | None
    town: float | None
    rural: float | None
    rural_to_urban: float | None = Field(description="rural mean / urban mean (1.0: no gap)")


class Equity(OmitUnset):
    """Equity of every county in a scope, and the urban–town–rural gap of the scope."""

    OPTIONAL = frozenset({"period"})

    scope: Scope
    counties: list[CountyEquity]
    gap: list[LocaleGap]
    period: PeriodInfo | None = Field(None, description="the period the indicators are taken over (only with a "
                                                        "period)")
