"""Figure routes: the catalogue, a scope's figures with its children's, rankings, trends."""

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response

from api.deps import AskedPeriod, Conn, CurrentUser, Hours, PathScope
from api.export import EXPORT_RESPONSES, ExportFormat, table_response
from api.inputs import DbText
from api.metrics import service, trends
from api.metrics.catalogue import FIGURES
from api.metrics.models import Bands, FigureInfo, Figures, Ranking, Trend, period_info
from api.metrics.settings import metrics_settings
from api.targets.service import attach
from core.period import Period

router = APIRouter(prefix="/api/v1", tags=["figures"])

FigureKey = Annotated[DbText, Query(max_length=64, examples=["online_rate"])]
DEFAULT_KEYS = ["devices", "online", "online_rate", "board_online_rate", "recorder_online_rate",
                "gateway_online_rate", "boards_in_use_now", "recorders_live_now", "silent_devices"]


def figure_info(key: str) -> FigureInfo:
    f = FIGURES[key]
    settings = metrics_settings()
    bands = (Bands(good=settings.online_rate_good, fair=settings.online_rate_fair)
             if key.endswith("online_rate") else None)
    return FigureInfo(key=f.key, zh=f.zh, en=f.en, unit=f.unit, better=f.better, description=f.description,
                      bands=bands, lessons=f.lessons is not None)


def known(keys: list[str]) -> list[str]:
    unknown = [k for k in keys if k not in FIGURES]
    if unknown:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"unknown figure(s): {', '.join(unknown)}")
    return keys


@router.get("/figures", response_model=list[FigureInfo], summary="Every figure the API computes")
def catalogue(_user: CurrentUser) -> list[FigureInfo]:
    """The catalogue: key, names, unit and which direction is better."""
    return [figure_info(k) for k in FIGURES]


def _with_targets(conn: Conn, result: Figures, period: Period) -> Figures:
    """The targets that apply, judged on the day the figures describe (the period's last day begun)."""
    today = service.local_date(conn, result.as_of)
    return attach(conn, result, today if period.is_now else min(period.elapsed_last, today))


def _computed(conn, scope, user, keys: list[str], period: Period, hours: str) -> Figures:
    """The figures, with the targets that apply; 422 with the reason for a lens that cannot be asked."""
    try:
        result = service.compute(conn, scope, user, keys, period=period, lessons=hours == "lessons")
    except service.LensError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return _with_targets(conn, result, period)


@router.get("/scopes/{level}/{code}/figures", response_model=Figures,
            summary="Figures of a scope and of each child, now or over a period, with the targets that apply")
def figures(scope: PathScope, conn: Conn, user: CurrentUser, period: AskedPeriod, hours: Hours = "all",
            keys: Annotated[DbText | None, Query(max_length=1000, description="comma-separated figure keys",
                                              examples=["online_rate,boards_in_use_now"])] = None) -> Figures:
    """Each figure for the scope and each child; `keys` picks figures (default: availability now).
    With `period` (or `from`/`to`) every figure answers over that period from the rollups, with
    `previous` (its value over the previous period) and `change`; `period` in the answer names both.
    With `hours=lessons` only the lesson hours of the period's school days count."""
    wanted = known([k.strip() for k in keys.split(",") if k.strip()]) if keys else DEFAULT_KEYS
    return _computed(conn, scope, user, wanted, period, hours)


@router.get("/scopes/{level}/{code}/ranking", response_model=Ranking,
            summary="Children ranked by a figure, now or over a period (format=csv|xlsx to export)",
            responses=EXPORT_RESPONSES)
def ranking(scope: PathScope, conn: Conn, user: CurrentUser, period: AskedPeriod, figure: FigureKey = "online_rate",
            order: Literal["worst", "best"] = "worst", limit: Annotated[int, Query(ge=1, le=10_000)] = 10,
            format: ExportFormat = "json", hours: Hours = "all") -> Ranking | Response:  # noqa: A002 - query name
    """The worst (or best) children by one figure, with their target status (and, over a period, the
    previous period's value and the change); `hours=lessons` ranks by the lesson hours only."""
    known([figure])
    result = _computed(conn, scope, user, [figure], period, hours)
    items = service.rank(result, figure, order, limit)
    if format != "json":
        columns = ("rank", "level", "code", "name", "value") + (("previous", "change") if result.period else ()) \
            + ("target_status",)
        rows = [{"rank": i.rank, "level": i.level, "code": i.code, "name": i.name, "value": i.value,
                 "previous": i.previous, "change": i.change,
                 "target_status": i.target.status if i.target else None} for i in items]
        suffix = ("" if period.is_now else f"-{period.first}_{period.last}") + ("-lessons" if result.hours else "")
        return table_response(rows, columns, format, f"ranking-{figure}-{scope.code}{suffix}")
    extra = {"period": result.period} if result.period else {}
    return Ranking(scope=scope, figure=figure_info(figure), order=order, items=items,
                   **extra, **({"hours": result.hours} if result.hours else {}))


@router.get("/scopes/{level}/{code}/trend", response_model=Trend, summary="A figure over time, from the rollups")
def trend(scope: PathScope, conn: Conn, user: CurrentUser, period: AskedPeriod, figure: FigureKey = "online_rate",
          bucket: Literal["hour", "day", "week"] = "day",
          days: Annotated[int, Query(ge=1, le=366, description="the last days followed (without a period)")] = 30,
          hours: Hours = "all") -> Trend:
    """The figure per hour, day or week over the last `days` days, or over the days of `period`
    (or `from`/`to`), which then replaces `days`; `hours=lessons` follows the lesson hours only."""
    if not trends.has_trend(figure):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"figure {figure!r} has no trend; trends exist for: {', '.join(trends.TRENDS)}")
    lessons = hours == "lessons"
    if lessons:
        try:
            service.check_lens([figure], period)
        except service.LensError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    if period.is_now:
        points = trends.trend(conn, scope, user, figure, bucket, days)
        return Trend(scope=scope, figure=figure_info(figure), bucket=bucket, points=points)
    period = service.rolled_up(conn, period)
    points = trends.trend_over(conn, scope, user, figure, bucket, period, lessons=lessons)
    return Trend(scope=scope, figure=figure_info(figure), bucket=bucket, points=points, period=period_info(period),
                 **({"hours": "lessons"} if lessons else {}))

