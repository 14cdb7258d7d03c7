"""The map, drawn offline from the API's answers: a scope's children as their boundaries coloured by a figure,
or, below the counties, its schools as points coloured by their state and sized by their students.

The boundaries and the schools come from `GET …/map` (simplified once by the API), the colours from
`GET …/ranking` over every child (the same values the overview ranks), so the map and the ranking never
disagree. The legend follows the figure's bands where the bureau set them (good / fair / poor, as the
children table colours rates); else the targets that apply to the children (met / behind / missed, as the
targets page judges them); else a colour scale over the children's spread. No tiles, no network: Plotly's
geo subplot draws the GeoJSON with every base layer off, and the base map it asks for anyway is an empty
one among the cockpit's own assets (`map_graph`).

A live refresh re-colours the areas already drawn (a `Patch` without the boundaries), so a province's
boundaries cross the network once per view, not every few seconds.
"""

from dataclasses import dataclass, field

import dash
import plotly.graph_objects as go
from dash import Patch, dcc

from dashboard import api_client
from dashboard.components import GRAPH_CONFIG
from dashboard.figures import (
    BACKGROUND,
    FAIR,
    GOOD,
    NONE,
    POOR,
    Bands,
    bands_of,
    colour_range,
    empty_figure,
    lens_for,
    styled,
)
from dashboard.i18n import NO_DATA, figure_name, fmt_count, fmt_gap, fmt_value, missing, t
from dashboard.scope import api_path, href, period_params, scope_search

STATE_COLOURS = {"fine": GOOD, "faults": FAIR, "offline": POOR, "no_devices": NONE}
STATES = ("fine", "faults", "offline", "no_devices")
STATUS_COLOURS = {"met": GOOD, "behind": FAIR, "missed": POOR, "no_data": NONE}
BAND_COLOURS = {"good": GOOD, "fair": FAIR, "poor": POOR, None: NONE}
EDGE = "#06122b"
OUTLINE_FILL = "#10264f"
SCHOOL_SIZE = (7, 30)  # marker diameters (px) of the smallest and the largest school
TOPOJSON_FOLDER = "geo/"  # below the cockpit's assets: world_110m.json, an empty topology (see map_graph)


@dataclass
class Colouring:
    """How the areas are coloured: each one's z and hover text, the colour scale, the legend entries."""

    mode: str  # bands, targets or scale
    z: list[float | None]
    hover: list[str]
    colorscale: list
    zmin: float
    zmax: float
    legend: list[tuple[str, str]] = field(default_factory=list)  # (label, colour); empty: a colour bar instead


def _steps(colours: list[str]) -> list:
    """A colour scale of equal steps, one flat colour per class (class i is drawn at z = i + 0.5)."""
    n = len(colours)
    scale = []
    for i, colour in enumerate(colours):
        scale += [[i / n, colour], [(i + 1) / n, colour]]
    return scale


COMPARATORS = {">=": "≥", "<=": "≤"}


def _bar(comparator: str, value: float, unit: str, lang: str) -> str:
    """A target's bar in words, e.g. 目标 ≥ 95.0%."""
    return f"{t('target', lang)} {COMPARATORS.get(comparator, comparator)} {fmt_value(value, unit, lang)}"


def _target_line(target: dict | None, unit: str, lang: str) -> str:
    if not target:
        return f"{t('target', lang)}: {t('targets.not_set', lang)}"
    line = f"{_bar(target['comparator'], target['value'], unit, lang)} · {t('status.' + target['status'], lang)}"
    gap = fmt_gap(target.get("gap"), unit, lang)
    return line + (f" · {t('gap', lang)} {gap}" if gap != NO_DATA else "")


def area_hover(name: str, item: dict | None, info: dict, lang: str) -> str:
    """A child's hover: its name, the figure's value and the target that applies to it (or that none does)."""
    unit = info.get("unit", "")
    value = (item or {}).get("value")
    return (f"<b>{name}</b><br>{figure_name(info, lang)}: {fmt_value(value, unit, lang)}<br>"
            f"{_target_line((item or {}).get('target'), unit, lang)}")


def _band_labels(bands: Bands, unit: str, lang: str) -> list[str]:
    good, fair = fmt_value(bands.good, unit, lang), fmt_value(bands.fair, unit, lang)
    return [f"{t('map.band.good', lang)} ≥ {good}", f"{t('map.band.fair', lang)} {fair}–{good}",
            f"{t('map.band.poor', lang)} < {fair}", t("status.no_data", lang)]


def _status_labels(targets: list[dict], untargeted: bool, unit: str, lang: str) -> list[str]:
    """The legend of the targets' statuses; the bar when one bar applies to every child judged, and grey says
    "no target" too where some child has none (a target set on a city holds in that city only)."""
    bars = {(g["comparator"], g["value"]) for g in targets}
    bar = f" ({_bar(*bars.pop(), unit, lang)})" if len(bars) == 1 else ""
    grey = t("status.no_data", lang) + (f" / {t('targets.not_set', lang)}" if untargeted else "")
    return [t("status.met", lang) + bar, t("status.behind", lang), t("status.missed", lang), grey]


def colouring(codes: list[str], names: dict[str, str], ranking: dict, lang: str) -> Colouring:
    """The colours of the areas `codes` by the ranking's figure (see the module for the legend's rule)."""
    info, items = ranking["figure"], {i["code"]: i for i in ranking["items"]}
    unit, better = info.get("unit", ""), info.get("better", "higher")
    hover = [area_hover(names.get(c, c), items.get(c), info, lang) for c in codes]
    values = [None if missing((items.get(c) or {}).get("value")) else items[c]["value"] for c in codes]
    bands = bands_of(info.get("bands"))
    targets = [items[c]["target"] for c in codes if (items.get(c) or {}).get("target")]
    if bands is not None:
        grades = [bands.grade(v) for v in values]
        classes = ["good", "fair", "poor", None]
        z = [classes.index(g) + 0.5 for g in grades]
        return Colouring("bands", z, hover, _steps([BAND_COLOURS[c] for c in classes]), 0, len(classes),
                         list(zip(_band_labels(bands, unit, lang), [BAND_COLOURS[c] for c in classes], strict=True)))
    if targets:
        statuses = ["met", "behind", "missed", "no_data"]
        z = [statuses.index(((items.get(c) or {}).get("target") or {}).get("status", "no_data")) + 0.5
             for c in codes]
        colours = [STATUS_COLOURS[s] for s in statuses]
        return Colouring("targets", z, hover, _steps(colours), 0, len(statuses),
                         list(zip(_status_labels(targets, len(targets) < len(codes), unit, lang), colours,
                                  strict=True)))
    low, high = colour_range([v for v in values if v is not None], unit, better)
    scale = [[0, POOR], [0.5, FAIR], [1, GOOD]] if better == "higher" else [[0, GOOD], [0.5, FAIR], [1, POOR]]
    grey = [(t("status.no_data", lang), NONE)] if None in values else []
    return Colouring("scale", values, hover, scale, low, high, grey)


def _feature_collection(areas: list[dict]) -> dict:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": a["code"], "properties": {"name": a["name"]}, "geometry": a["boundary"]}
        for a in areas]}


def _geo(fig: go.Figure, title: str, view: str, bounds: list[float] | None) -> go.Figure:
    """No base layers, the map fitted to `bounds` (west, south, east, north) with a margin, the legend at the
    right. Plotly still asks for its world base map (see map_graph) while drawing nothing of it."""
    fig.update_geos(visible=False, projection_type="mercator", bgcolor=BACKGROUND, scope="world", resolution=110)
    if bounds:
        west, south, east, north = bounds
        pad_x, pad_y = max((east - west) * 0.03, 0.01), max((north - south) * 0.03, 0.01)
        fig.update_geos(fitbounds=False, lonaxis_range=[west - pad_x, east + pad_x],
                        lataxis_range=[south - pad_y, north + pad_y])
    else:
        fig.update_geos(fitbounds="locations")
    styled(fig, title, legend=True)
    return fig.update_layout(margin={"l": 4, "r": 4, "t": 44, "b": 4}, uirevision=view, hovermode="closest",
                             legend={"orientation": "v", "x": 0.99, "xanchor": "right", "y": 0.02,
                                     "yanchor": "bottom", "bgcolor": "rgba(6,18,43,0.6)", "itemsizing": "constant"})


def map_graph(graph_id: str, height: int) -> dcc.Graph:
    """A map's slot: Plotly's geo subplot fetches a world base map for any trace with a location mode (a
    choropleth always has one), even with every layer off; the cockpit serves it an empty one from its own
    assets (TOPOJSON_FOLDER), so drawing a map never leaves the machine."""
    return dcc.Graph(id=graph_id, style={"height": f"{height}px"},
                     config={**GRAPH_CONFIG, "topojsonURL": dash.get_asset_url(TOPOJSON_FOLDER)})


def _legend_marker(label: str, colour: str, symbol: str = "square") -> go.Scattergeo:
    return go.Scattergeo(lon=[None], lat=[None], mode="markers", name=label, showlegend=True, hoverinfo="skip",
                         marker={"size": 14, "color": colour, "symbol": symbol, "line": {"color": EDGE, "width": 1}})


def _area_trace(areas: list[dict], level: str, paint: Colouring, z: list[float], hover: list[str]) -> go.Choropleth:
    return go.Choropleth(
        geojson=_feature_collection(areas), locations=[a["code"] for a in areas], z=z,
        customdata=[[level, a["code"], h] for a, h in zip(areas, hover, strict=True)],
        hovertemplate="%{customdata[2]}<extra></extra>", colorscale=paint.colorscale, zmin=paint.zmin,
        zmax=paint.zmax, showscale=paint.mode == "scale", showlegend=False, name="areas",
        colorbar={"thickness": 14, "len": 0.6, "x": 0.99, "xanchor": "right", "tickfont": {"color": "#d7e6ff"}},
        marker={"line": {"color": EDGE, "width": 1.2}})


def _grey_trace(areas: list[dict], level: str, hover: list[str]) -> go.Choropleth:
    """The areas without a value on a colour scale: grey, never painted as the worst (or best) of the others."""
    return go.Choropleth(
        geojson=_feature_collection(areas), locations=[a["code"] for a in areas], z=[0] * len(areas),
        customdata=[[level, a["code"], h] for a, h in zip(areas, hover, strict=True)],
        hovertemplate="%{customdata[2]}<extra></extra>", colorscale=[[0, NONE], [1, NONE]], showscale=False,
        showlegend=False, name="no_data", marker={"line": {"color": EDGE, "width": 1.2}})


def _split(codes: list[str], paint: Colouring) -> tuple[list[int], list[int]]:
    """Which areas have a colour (the first trace) and which have no value (grey, on a colour scale only)."""
    return ([i for i, z in enumerate(paint.z) if z is not None], [i for i, z in enumerate(paint.z) if z is None])


def areas_figure(scope_map: dict, ranking: dict, title: str, view: str, lang: str) -> go.Figure:
    """A province's cities or a city's counties as their boundaries, coloured by the ranking's figure. What was
    drawn (the legend's mode and size, the areas of each trace) is the layout's `meta`, for `recolour`."""
    areas = [a for a in scope_map["children"] if a.get("boundary")]
    if not areas:
        return empty_figure(title, lang)
    codes, level = [a["code"] for a in areas], areas[0]["level"]
    paint = colouring(codes, {a["code"]: a["name"] for a in areas}, ranking, lang)
    shown, grey = _split(codes, paint)
    meta = {"mode": paint.mode, "legend": len(paint.legend), "shown": [codes[i] for i in shown],
            "grey": [codes[i] for i in grey], "names": {a["code"]: a["name"] for a in areas}, "level": level}
    fig = go.Figure(_area_trace([areas[i] for i in shown], level, paint, [paint.z[i] for i in shown],
                                [paint.hover[i] for i in shown]), layout={"meta": meta})
    if grey:
        fig.add_trace(_grey_trace([areas[i] for i in grey], level, [paint.hover[i] for i in grey]))
    for label, colour in paint.legend:
        fig.add_trace(_legend_marker(label, colour))
    return _geo(fig, title, view, scope_map.get("bounds"))


def recolour(ranking: dict, title: str, lang: str, drawn: dict) -> Patch | None:
    """The live refresh of an areas map already drawn (`drawn`: its layout's meta): new colours, hovers and
    legend, the boundaries left in place; None when the legend or which areas have a value changed (the
    caller draws the map again)."""
    codes = drawn["shown"] + drawn["grey"]
    paint = colouring(codes, drawn["names"], ranking, lang)
    shown, grey = _split(codes, paint)
    if (paint.mode, len(paint.legend), [codes[i] for i in shown]) != (drawn["mode"], drawn["legend"], drawn["shown"]):
        return None
    patch, level = Patch(), drawn["level"]
    patch["data"][0]["z"] = [paint.z[i] for i in shown]
    patch["data"][0]["customdata"] = [[level, codes[i], paint.hover[i]] for i in shown]
    patch["data"][0]["zmin"], patch["data"][0]["zmax"] = paint.zmin, paint.zmax
    if grey:
        patch["data"][1]["customdata"] = [[level, codes[i], paint.hover[i]] for i in grey]
    for i, (label, _colour) in enumerate(paint.legend, start=1 + bool(grey)):
        patch["data"][i]["name"] = label
    patch["layout"]["title"]["text"] = title
    return patch


def school_hover(school: dict, item: dict | None, info: dict, lang: str) -> str:
    """A school's hover: its name, state, students, devices online, open alerts and the figure's value."""
    return (f"<b>{school['name']}</b><br>{t('map.state', lang)}: {t('map.state.' + school['state'], lang)}<br>"
            f"{t('map.students', lang)}: {fmt_count(school['students'], lang)}<br>"
            f"{t('online', lang)}: {fmt_count(school['online'], lang)} / {fmt_count(school['devices'], lang)}<br>"
            f"{t('open_alerts', lang)}: {fmt_count(school['alerts'], lang)}<br>"
            f"{figure_name(info, lang)}: {fmt_value((item or {}).get('value'), info.get('unit', ''), lang)}")


def school_size(students: int, most: int) -> float:
    """A school's marker diameter: its area grows with its students, from SCHOOL_SIZE[0] to SCHOOL_SIZE[1]."""
    small, large = SCHOOL_SIZE
    return small + (large - small) * ((students / most) ** 0.5 if most else 0)


def schools_figure(scope_map: dict, ranking: dict, title: str, view: str, lang: str) -> go.Figure:
    """The counties' outlines and the schools as points: colour by state, size by students, a click opens one."""
    placed = [s for s in scope_map["schools"] if not missing(s.get("latitude")) and not missing(s.get("longitude"))]
    outlines = [a for a in scope_map["outlines"] if a.get("boundary")]
    if not placed and not outlines:
        return empty_figure(title, lang)
    info, items = ranking["figure"], {i["code"]: i for i in ranking["items"]}
    most = max((s["students"] for s in placed), default=0)
    fig = go.Figure()
    if outlines:
        fig.add_trace(go.Choropleth(
            geojson=_feature_collection(outlines), locations=[a["code"] for a in outlines], z=[0] * len(outlines),
            colorscale=[[0, OUTLINE_FILL], [1, OUTLINE_FILL]], showscale=False, showlegend=False, name="outline",
            customdata=[["outline", a["code"], a["name"]] for a in outlines],
            hovertemplate="%{customdata[2]}<extra></extra>", marker={"line": {"color": "#38bdf8", "width": 1.5}}))
    for state in STATES:
        group = [s for s in placed if s["state"] == state]
        if not group:  # the legend still says what each colour means (a trace without points has no entry)
            if state != "no_devices":
                fig.add_trace(_legend_marker(t(f"map.state.{state}", lang), STATE_COLOURS[state], "circle"))
            continue
        fig.add_trace(go.Scattergeo(
            lon=[s["longitude"] for s in group], lat=[s["latitude"] for s in group], mode="markers",
            name=t(f"map.state.{state}", lang), showlegend=True,
            customdata=[["school", s["code"], school_hover(s, items.get(s["code"]), info, lang)] for s in group],
            hovertemplate="%{customdata[2]}<extra></extra>",
            marker={"size": [school_size(s["students"], most) for s in group], "color": STATE_COLOURS[state],
                    "opacity": 0.9, "line": {"color": EDGE, "width": 1}}))
    return _geo(fig, title, view, scope_map.get("bounds"))


def click_target(click: dict | None, path: str) -> str | None:
    """Where a click on the map leads: a child area drills down on the page at `path` (keeping the view), a
    school opens its own page; None for anything else (an outline, the background)."""
    points = (click or {}).get("points") or []
    data = points[0].get("customdata") if points else None
    if not data or len(data) < 2:
        return None
    level, code = data[0], data[1]
    if level == "school":
        return href("/", "school", code)
    if level in ("city", "county"):  # an area (an outline behind the schools says "outline")
        return path + scope_search(level, code)
    return None


def _notes(scope_map: dict, lang: str) -> list[str]:
    """What the map cannot draw: children without a boundary in the division data, schools without coordinates."""
    notes = []
    unmapped = [a["name"] for a in scope_map["children"] + scope_map["outlines"] if not a.get("boundary")]
    if unmapped:
        notes.append(t("map.no_boundary", lang).format(n=len(unmapped), names="、".join(unmapped[:5])))
    unplaced = [s for s in scope_map["schools"] if missing(s.get("latitude")) or missing(s.get("longitude"))]
    if unplaced:
        notes.append(t("map.no_coordinates", lang).format(n=len(unplaced)))
    return notes + [f"{t('map.source', lang)}: {scope_map['source']}"]


@dataclass
class MapDraw:
    """What a map callback outputs: the figure (or a Patch of its colours), what was drawn (for the next live
    refresh), the notes under the map and the scope (None for the last two when only the colours changed)."""

    figure: object
    drawn: dict | None
    notes: list[str] | None = None
    scope: dict | None = None


def draw(token: str, level: str, code: str, key: str, search: str | None, lang: str, drawn: dict | None,
         live: bool, path: str) -> MapDraw:
    """The map of a scope coloured by figure `key` over the URL's period (and its lesson hours, where the
    figure has them). A live refresh (`live`) of the view `drawn` holds re-colours the areas without
    sending their boundaries again."""
    base, period = api_path(level, code), period_params(search)
    lens = lens_for(token, key, search)
    ranking = api_client.get(token, f"{base}/ranking", figure=key, order="worst", limit=10000, **period, **lens)
    title = f"{t('map', lang)} · {figure_name(ranking['figure'], lang)}" + (
        f" · {t('hours.lessons', lang)}" if lens else "")
    view = "|".join((path, level, code, key, search or "", lang))
    if live and drawn and drawn.get("view") == view and drawn.get("areas"):
        patch = recolour(ranking, title, lang, drawn["areas"])
        if patch is not None:
            return MapDraw(patch, dash.no_update)
    scope_map = api_client.get(token, f"{base}/map")
    if scope_map["children"]:
        fig = areas_figure(scope_map, ranking, title, view, lang)
    else:
        fig = schools_figure(scope_map, ranking, t("map.schools", lang), view, lang)
    return MapDraw(fig, {"view": view, "areas": fig.layout.meta}, _notes(scope_map, lang), scope_map["scope"])
