"""Scope shapes returned by the API."""

from typing import Literal

from pydantic import BaseModel, Field

from core.scope import Level


class ScopeRef(BaseModel):
    """A scope named by level and code."""

    level: Level
    code: str
    name: str


class Scope(ScopeRef):
    """A scope with the path above it and the kind of its children."""

    parents: list[ScopeRef] = Field(default_factory=list, description="from the top down")
    child_level: Level | None = None


class KindFigures(BaseModel):
    """Availability figures of one device kind."""

    kind: Literal["board", "recorder", "gateway"]
    devices: int
    online: int
    online_rate: float | None = Field(description="online / devices, null when there are no devices")


class Availability(BaseModel):
    """Device availability of one scope, in total and by kind."""

    devices: int
    online: int
    online_rate: float | None
    by_kind: list[KindFigures]


class ChildAvailability(ScopeRef):
    """A child scope's availability."""

    availability: Availability


class Overview(BaseModel):
    """A scope's availability now, with the same figures for each child."""

    scope: Scope
    as_of: str
    availability: Availability
    children: list[ChildAvailability]
