"""Figures of the cockpit, built by pure functions from API responses (testable without a browser)."""

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from dashboard import api_client
from dashboard.i18n import figure_name, fmt_value, local_time, missing, parse_time, t
from dashboard.scope import lens_params

BACKGROUND = "rgba(0,0,0,0)"
TEXT = "#d7e6ff"
GRID = "rgba(120,160,220,0.15)"
GOOD, FAIR, POOR, NONE = "#2ecc71", "#f1c40f", "#e74c3c", "#5b6b82"
ACCENT = "#38bdf8"
FONT = '"Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif'


class Bands(NamedTuple):
    """The bars a rate is judged against: good from `good` up, fair from `fair` up, poor below."""

    good: float
    fair: float

    def grade(self, rate: float | None) -> str | None:
        """good, fair or poor (None for no rate)."""
        if rate is None:
            return None
        return "good" if rate >= self.good else "fair" if rate >= self.fair else "poor"


GRADE_COLOURS = {"good": GOOD, "fair": FAIR, "poor": POOR, None: NONE}
GRADE_STATUS = {"good": "met", "fair": "behind", "poor": "missed", None: None}  # as a tile's traffic light


def bands_of(served: dict | None) -> Bands | None:
    """The bands the API serves with a figure or a summary (`{"good": …, "fair": …}`); None for none."""
    return Bands(good=served["good"], fair=served["fair"]) if served else None


def served_bands(token: str, key: str = "online_rate") -> Bands | None:
    """A figure's bands as the bureau set them (the API's METRICS_* settings, in its catalogue)."""
    info = next((f for f in api_client.get(token, "/api/v1/figures") if f["key"] == key), None)
    return bands_of(info.get("bands") if info else None)


def lens_for(token: str, key: str, search: str | None) -> dict[str, str]:
    """`hours=lessons` for a figure, when the URL asks for the lesson hours and the figure has that lens."""
    lens = lens_params(search)
    if not lens:
        return {}
    info = next((f for f in api_client.get(token, "/api/v1/figures") if f["key"] == key), None)
    return lens if info and info.get("lessons") else {}


def rate_colour(rate: float | None, bands: Bands | None) -> str:
    """Traffic-light colour of a rate against its bands; neutral without bands or without a rate."""
    return GRADE_COLOURS[bands.grade(rate) if bands else None]


def styled(fig: go.Figure, title: str, legend: bool = False) -> go.Figure:
    """The cockpit's dark look; uirevision keeps zoom and selections across live refreshes."""
    fig.update_layout(
        title={"text": title, "font": {"size": 18, "color": TEXT}, "x": 0.01, "y": 0.97},
        paper_bgcolor=BACKGROUND, plot_bgcolor=BACKGROUND, font={"color": TEXT, "size": 14, "family": FONT},
        margin={"l": 56, "r": 16, "t": 48, "b": 48}, uirevision="keep", showlegend=legend,
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        hoverlabel={"font": {"family": FONT}},
    )
    fig.update_xaxes(gridcolor=GRID, zeroline=False)
    fig.update_yaxes(gridcolor=GRID, zeroline=False)
    return fig


def empty_figure(title: str, lang: str) -> go.Figure:
    """A blank chart that says there is no data (instead of empty axes)."""
    fig = go.Figure()
    fig.add_annotation(text=t("empty", lang), showarrow=False, font={"size": 20, "color": "#7d8fb3"},
                       xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return styled(fig, title)


def kind_figure(availability: dict, lang: str) -> go.Figure:
    """Stacked bars of online and offline devices for each device kind."""
    kinds = availability["by_kind"]
    if not kinds:
        return empty_figure(t("by_kind", lang), lang)
    labels = [t(k["kind"], lang) for k in kinds]
    fig = go.Figure([
        go.Bar(name=t("online", lang), x=labels, y=[k["online"] for k in kinds], marker_color=GOOD,
               text=[k["online"] for k in kinds], textposition="inside"),
        go.Bar(name=t("offline", lang), x=labels, y=[k["devices"] - k["online"] for k in kinds],
               marker_color="#34495e", text=[k["devices"] - k["online"] for k in kinds], textposition="outside"),
    ])
    fig.update_layout(barmode="stack")
    return styled(fig, t("by_kind", lang), legend=True)


BUCKET_LENGTH = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
IN_PROGRESS_FILL = "rgba(158,197,255,0.10)"
_X_FORMAT = "%Y-%m-%d %H:%M"


def in_progress(point: dict, bucket: str, now: datetime | None = None) -> bool:
    """True when the point's bucket has not ended yet: its data is partial (the current hour or day).

    The API's own word wins when it sends one (`complete` on the point); otherwise the bucket
    is in progress when it started less than one bucket length before `now` (the API's
    `as_of` when it sends one, else this clock).
    """
    if point.get("complete") is not None:
        return not point["complete"]
    start, length = parse_time(point["bucket"]), BUCKET_LENGTH.get(bucket)
    if start is None or length is None:
        return False
    return start + length > (now or datetime.now(UTC))


def trend_figure(points: list[dict], info: dict, title: str, lang: str, bucket: str = "hour",
                 now: datetime | None = None) -> go.Figure:
    """A figure over time (x in local time), with a marker on the latest complete value.

    Only finished buckets make the line: a bucket with no value is a gap (never 0), and the
    bucket still in progress (the current hour, with a few minutes of data) is not a point
    at all: it is shaded and labelled 进行中 / in progress, its hover saying why, so the line
    never ends in a dip beside a tile that says 98 %.
    """
    now = now or datetime.now(UTC)
    done = [p for p in points if not in_progress(p, bucket, now)]
    current = [p for p in points if in_progress(p, bucket, now)]
    known = [p for p in done if not missing(p["value"])]
    if not known:
        return empty_figure(title, lang)
    unit = info.get("unit", "")
    ratio = unit == "ratio"
    x = [local_time(p["bucket"]).strftime(_X_FORMAT) for p in done]
    y = [None if missing(p["value"]) else p["value"] * 100 if ratio else p["value"] for p in done]
    fig = go.Figure(go.Scatter(
        x=x, y=y, mode="lines", line={"color": ACCENT, "width": 3}, connectgaps=False, name="trend",
        fill="tozeroy", fillcolor="rgba(56,189,248,0.12)",
        customdata=[fmt_value(p["value"], unit, lang) for p in done],
        hovertemplate="%{x}<br>%{customdata}<extra></extra>",
    ))
    last = known[-1]
    fig.add_trace(go.Scatter(x=[local_time(last["bucket"]).strftime(_X_FORMAT)],
                             y=[last["value"] * 100 if ratio else last["value"]], mode="markers+text",
                             marker={"size": 10, "color": "#fff"}, text=[fmt_value(last["value"], unit, lang)],
                             textposition="top left", hoverinfo="skip", name="latest"))
    if ratio:
        fig.update_yaxes(range=[0, 105], ticksuffix="%")
    fig.update_xaxes(tickformat="%m-%d %H:%M", nticks=8)
    return _mark_in_progress(styled(fig, title), current, bucket, lang)


def _mark_in_progress(fig: go.Figure, current: list[dict], bucket: str, lang: str) -> go.Figure:
    """Shade the bucket still in progress and say so (its partial value is not drawn)."""
    for p in current:
        start = local_time(p["bucket"])
        end = start + BUCKET_LENGTH.get(bucket, BUCKET_LENGTH["hour"])
        x0, x1 = start.strftime(_X_FORMAT), end.strftime(_X_FORMAT)
        fig.add_vrect(x0=x0, x1=x1, fillcolor=IN_PROGRESS_FILL, line={"width": 1, "dash": "dot", "color": NONE},
                      layer="below", name="in_progress")
        fig.add_annotation(x=x1, y=1, xref="x", yref="paper", xanchor="right", yanchor="bottom", showarrow=False,
                           text=t("trend.in_progress", lang), font={"size": 12, "color": "#9ec5ff"},
                           hovertext=t(f"trend.in_progress.{bucket}", lang), name="in_progress")
    return fig


def colour_range(values: list[float], unit: str, better: str) -> tuple[float, float]:
    """The colour scale's ends: rates against fixed bars (so 100% is green), other figures by their spread."""
    if unit == "ratio":
        return (min([*values, 0.8]), 1.0) if better == "higher" else (0.0, max([*values, 0.2]))
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    return (low, high) if high > low else (low - 1, high + 1)


def tile_colour(value: float | None, scale: list, low: float, high: float) -> str:
    """The colour of a value on the scale between low and high; grey (NONE) when there is no value."""
    if missing(value):
        return NONE
    share = min(max((value - low) / (high - low), 0.0), 1.0) if high > low else 1.0
    return sample_colorscale(scale, [share])[0]


def treemap_figure(children: list[dict], key: str, info: dict, title: str, lang: str) -> go.Figure:
    """Children as tiles: area by devices, colour by the chosen figure (red is worse); click drills down."""
    if not children:
        return empty_figure(title, lang)
    unit, better = info.get("unit", ""), info.get("better", "higher")
    values = [c["figures"].get(key, {}).get("value") for c in children]
    values = [None if missing(v) else v for v in values]
    known = [v for v in values if v is not None]
    sizes = [max(c["figures"].get("devices", {}).get("value") or 0, 1) for c in children]
    scale = [[0, POOR], [0.5, FAIR], [1, GOOD]] if better == "higher" else [[0, GOOD], [0.5, FAIR], [1, POOR]]
    low, high = colour_range(known, unit, better)
    fig = go.Figure(go.Treemap(
        labels=[c["name"] for c in children], parents=[""] * len(children), values=sizes,
        ids=[c["code"] for c in children], customdata=[[c["level"], c["code"]] for c in children],
        text=[fmt_value(v, unit, lang) for v in values],
        texttemplate="<b>%{label}</b><br>%{text}", textfont={"size": 16, "family": FONT},
        hovertemplate="%{label}<br>" + figure_name(info, lang) + ": %{text}<extra></extra>",
        # a child without the figure is grey, not painted as the worst (or best) of the others
        marker={"colors": [tile_colour(v, scale, low, high) for v in values],
                "colorscale": scale, "line": {"color": "#06122b", "width": 2},
                "cmin": low, "cmax": high, "pad": {"t": 0, "l": 0, "r": 0, "b": 0}},
        tiling={"pad": 2}, sort=True, root={"color": BACKGROUND}, pathbar={"visible": False},
    ))
    return styled(fig, title).update_layout(margin={"l": 4, "r": 4, "t": 44, "b": 4})
