"""Equity shapes."""

from typing import Literal

from pydantic import BaseModel, Field

from api.metrics.models import OmitUnset, PeriodInfo, TargetStatus
from api.scopes.models import Scope, ScopeRef

Group = Literal["primary", "junior"]


class IndicatorCV(BaseModel):
    """One indicator's enrolment-weighted mean and coefficient of variation in one school group."""

    indicator: str
    schools: int
    mean: float | None
    cv: float | None = Field(description="S / mean with S = sqrt(sum(P_i/P * (X_i - mean)^2))")


class GroupEquity(BaseModel):
    """A county's school group (primary or junior) against the target that applies to it."""

    group: Group
    schools: int
    students: int
    indicators: list[IndicatorCV]
    composite_cv: float | None = Field(description="mean of the indicators' CVs (综合差异系数)")
    judged: bool = Field(description="false when the group has fewer schools than `min_schools` (样本不足): its "
                                     "coefficient is then judged against no target")
    bar: float | None = Field(description="the value of the target that applies to the county (equity_cv_primary "
                                          "or equity_cv_junior in the target table); null when none is set")
    target: TargetStatus | None = Field(None, description="that target and how the group stands against it "
                                                          "(status no_data when not judged)")
    passes: bool | None = Field(description="the composite coefficient meets the target; null when no target is "
                                            "set, the group is not judged or has no coefficient")


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
    min_schools: int = Field(description="the fewest schools a group's coefficient is judged over (EQUITY_MIN_SCHOOLS)")
    period: PeriodInfo | None = Field(None, description="the period the indicators are taken over (only with a "
                                                        "period)")
