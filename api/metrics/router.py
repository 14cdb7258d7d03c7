"""Figure routes: the catalogue, a scope's figures with its children's, rankings, trends."""

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response

from api.deps import Conn, CurrentUser, PathScope
from api.export import EXPORT_RESPONSES, ExportFormat, table_response
from api.inputs import DbText
from api.metrics import service, trends
from api.metrics.catalogue import FIGURES
from api.metrics.models import Bands, FigureInfo, Figures, Ranking, Trend
from api.metrics.settings import metrics_settings
from api.targets.service import attach

router = APIRouter(prefix="/api/v1", tags=["figures"])

FigureKey = Annotated[DbText, Query(max_length=64, examples=["online_rate"])]
DEFAULT_KEYS = ["devices", "online", "online_rate", "board_online_rate", "recorder_online_rate",
                "gateway_online_rate", "boards_in_use_now", "recorders_live_now", "silent_devices"]


def _info(key: str) -> FigureInfo:
    f = FIGURES[key]
    settings = metrics_settings()
    bands = (Bands(good=settings.online_rate_good, fair=settings.online_rate_fair)
             if key.endswith("online_rate") else None)
    return FigureInfo(key=f.key, zh=f.zh, en=f.en, unit=f.unit, better=f.better, description=f.description,
                      bands=bands)


def _known(keys: list[str]) -> list[str]:
    unknown = [k for k in keys if k not in FIGURES]
    if unknown:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"unknown figure(s): {', '.join(unknown)}")
    return keys


@router.get("/figures", response_model=list[FigureInfo], summary="Every figure the API computes")
def catalogue(_user: CurrentUser) -> list[FigureInfo]:
    """The catalogue: key, names, unit and which direction is better."""
    return [_info(k) for k in FIGURES]


@router.get("/scopes/{level}/{code}/figures", response_model=Figures,
            summary="Figures of a scope and of each child, with the targets that apply")
def figures(scope: PathScope, conn: Conn, user: CurrentUser,
            keys: Annotated[DbText | None, Query(max_length=1000, description="comma-separated figure keys",
                                              examples=["online_rate,boards_in_use_now"])] = None) -> Figures:
    """Each figure for the scope and each child; `keys` picks figures (default: availability now)."""
    wanted = _known([k.strip() for k in keys.split(",") if k.strip()]) if keys else DEFAULT_KEYS
    result = service.compute(conn, scope, user, wanted)
    return attach(conn, result, service.local_date(conn, result.as_of))


@router.get("/scopes/{level}/{code}/ranking", response_model=Ranking,
            summary="Children ranked by a figure (format=csv|xlsx to export)", responses=EXPORT_RESPONSES)
def ranking(scope: PathScope, conn: Conn, user: CurrentUser, figure: FigureKey = "online_rate",
            order: Literal["worst", "best"] = "worst", limit: Annotated[int, Query(ge=1, le=10_000)] = 10,
            format: ExportFormat = "json") -> Ranking | Response:  # noqa: A002 - query name
    """The worst (or best) children by one figure, with their target status."""
    _known([figure])
    result = service.compute(conn, scope, user, [figure])
    result = attach(conn, result, service.local_date(conn, result.as_of))
    items = service.rank(result, figure, order, limit)
    if format != "json":
        rows = [{"rank": i.rank, "level": i.level, "code": i.code, "name": i.name, "value": i.value,
                 "target_status": i.target.status if i.target else None} for i in items]
        return table_response(rows, ("rank", "level", "code", "name", "value", "target_status"), format,
                              f"ranking-{figure}-{scope.code}")
    return Ranking(scope=scope, figure=_info(figure), order=order, items=items)


@router.get("/scopes/{level}/{code}/trend", response_model=Trend, summary="A figure over time, from the rollups")
def trend(scope: PathScope, conn: Conn, user: CurrentUser, figure: FigureKey = "online_rate",
          bucket: Literal["hour", "day", "week"] = "day",
          days: Annotated[int, Query(ge=1, le=366)] = 30) -> Trend:
    """The figure per hour, day or week over the last `days` days."""
    if not trends.has_trend(figure):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"figure {figure!r} has no trend; trends exist for: {', '.join(trends.TRENDS)}")
    points = trends.trend(conn, scope, user, figure, bucket, days)
    return Trend(scope=scope, figure=_info(figure), bucket=bucket, points=points)

