"""Shapes of a scope's map: its children's boundaries, the outlines its schools lie in, its schools."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.scopes.models import Scope, ScopeRef

SchoolState = Literal["fine", "faults", "offline", "no_devices"]


class Boundary(BaseModel):
    """A GeoJSON MultiPolygon: polygons, each its exterior ring then its holes, of [longitude, latitude]."""

    type: Literal["MultiPolygon"] = "MultiPolygon"
    coordinates: list[list[list[tuple[float, float]]]]


class MapArea(ScopeRef):
    """A division and its simplified boundary."""

    boundary: Boundary | None = Field(description="null when the division data has no boundary for its code "
                                                   "(a division the registry added or renamed itself)")


class MapSchool(BaseModel):
    """A school as a point of the map, with its state now."""

    code: str
    name: str
    county_code: str
    latitude: float | None = Field(description="null when the registry has no coordinates for it")
    longitude: float | None
    students: int
    devices: int
    online: int = Field(description="devices online now")
    alerts: int = Field(description="open alerts (firing or acknowledged), not counting those suppressed "
                                    "behind a root cause")
    state: SchoolState = Field(description="offline: devices but none online, or its gateway's offline alert "
                                           "is open; faults: open alerts; fine: neither; no_devices: none registered")


class ScopeMap(BaseModel):
    """What a scope's map draws: its children's boundaries (a province's cities, a city's counties), or, below
    the counties, the outline of each county its schools lie in and the schools themselves."""

    scope: Scope
    source: str = Field(description="the division data the boundaries come from")
    tolerance: float | None = Field(description="how far (degrees) a simplified boundary may stray from the "
                                                "data's; null when nothing is drawn")
    children: list[MapArea] = Field(description="the child divisions the user may see (province and city scopes)")
    outlines: list[MapArea] = Field(description="the counties the schools lie in (county, school and community "
                                                "scopes)")
    schools: list[MapSchool] = Field(description="the schools of the scope the user may see (county, school and "
                                                 "community scopes), in code order")
    bounds: tuple[float, float, float, float] | None = Field(
        description="[west, south, east, north] around everything drawn (degrees); null when nothing is")
    as_of: datetime | None = Field(description="when the schools' state was read (null without schools)")
