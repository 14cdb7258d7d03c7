"""Figures of the cockpit, built by pure functions from API responses (testable without a browser)."""

import plotly.graph_objects as go

from dashboard.i18n import t

BACKGROUND = "rgba(0,0,0,0)"
TEXT = "#d7e6ff"
GRID = "rgba(120,160,220,0.15)"
GOOD, FAIR, POOR = "#2ecc71", "#f1c40f", "#e74c3c"


def rate_colour(rate: float | None, good: float = 0.95, fair: float = 0.85) -> str:
    """Traffic-light colour of a rate against its good and fair bars."""
    if rate is None:
        return "#5b6b82"
    return GOOD if rate >= good else FAIR if rate >= fair else POOR


def _layout(fig: go.Figure, title: str) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 18, "color": TEXT}},
        paper_bgcolor=BACKGROUND, plot_bgcolor=BACKGROUND, font={"color": TEXT, "size": 14},
        margin={"l": 50, "r": 20, "t": 50, "b": 60}, uirevision="keep", showlegend=False,
    )
    fig.update_xaxes(gridcolor=GRID)
    fig.update_yaxes(gridcolor=GRID)
    return fig


def kind_figure(availability: dict, lang: str) -> go.Figure:
    """Stacked bars of online and offline devices for each device kind."""
    kinds = availability["by_kind"]
    labels = [t(k["kind"], lang) for k in kinds]
    fig = go.Figure([
        go.Bar(name=t("online", lang), x=labels, y=[k["online"] for k in kinds], marker_color=GOOD,
               text=[k["online"] for k in kinds], textposition="inside"),
        go.Bar(name=t("offline", lang), x=labels, y=[k["devices"] - k["online"] for k in kinds],
               marker_color="#34495e"),
    ])
    fig.update_layout(barmode="stack")
    return _layout(fig, t("by_kind", lang))


def children_figure(children: list[dict], lang: str) -> go.Figure:
    """Online rate of each child scope, worst first, coloured by traffic light; click drills down."""
    ranked = sorted(children, key=lambda c: (c["availability"]["online_rate"] is None,
                                             c["availability"]["online_rate"] or 0))
    rates = [c["availability"]["online_rate"] for c in ranked]
    fig = go.Figure(go.Bar(
        x=[c["name"] for c in ranked], y=[(r or 0) * 100 for r in rates],
        marker_color=[rate_colour(r) for r in rates],
        customdata=[[c["level"], c["code"]] for c in ranked],
        text=[f"{(r or 0) * 100:.0f}%" if r is not None else "—" for r in rates], textposition="outside",
        hovertemplate="%{x}: %{y:.1f}%<extra></extra>",
    ))
    fig.update_yaxes(range=[0, 110], ticksuffix="%")
    return _layout(fig, t("children", lang))
