"""Figures of the smart patrol (智能巡检)."""

import plotly.graph_objects as go

from dashboard.figures import FAIR, POOR, empty_figure, styled
from dashboard.i18n import t

SEVERITY_COLOURS = {"critical": POOR, "major": "#f97316", "warning": FAIR}


def schools_figure(schools: list[dict], title: str, lang: str, top: int = 10) -> go.Figure:
    """The schools with most open alerts, as horizontal bars stacked by severity (worst at the top)."""
    schools = sorted(schools, key=lambda s: (s["critical"], s["major"], s["alerts"]), reverse=True)[:top]
    if not schools:
        return empty_figure(title, lang)
    names = [s["school_name"] for s in reversed(schools)]
    fig = go.Figure([
        go.Bar(name=t(f"severity.{level}", lang), y=names, x=[s[level] for s in reversed(schools)],
               orientation="h", marker_color=colour)
        for level, colour in SEVERITY_COLOURS.items()])
    fig.update_layout(barmode="stack", margin={"l": 180})
    fig.update_xaxes(dtick=1 if max(s["alerts"] for s in schools) <= 10 else None)
    return styled(fig, title, legend=True)
