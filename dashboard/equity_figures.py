"""Figures of the equity page (优质均衡): county coefficients against the bars, indicator CVs, locale gap."""

import plotly.graph_objects as go

from dashboard.figures import ACCENT, FAIR, GOOD, POOR, empty_figure, styled
from dashboard.i18n import t

GROUP_COLOURS = {"primary": ACCENT, "junior": "#a78bfa"}
LOCALE_COLOURS = {"urban": ACCENT, "town": FAIR, "rural": "#fb923c"}


def county_groups(counties: list[dict]) -> list[tuple[dict, dict]]:
    """(county, group) pairs that have a composite coefficient, worst (highest) first."""
    pairs = [(c, g) for c in counties for g in c["groups"] if g["composite_cv"] is not None]
    return sorted(pairs, key=lambda p: -p[1]["composite_cv"])


def worst_counties(counties: list[dict], limit: int) -> list[dict]:
    """The counties with the highest composite coefficient in any group, worst first."""
    ranked = []
    for c, _g in county_groups(counties):
        if c not in ranked:
            ranked.append(c)
    return ranked[:limit]


def composite_figure(counties: list[dict], title: str, lang: str, limit: int = 20) -> go.Figure:
    """Each county's composite CV per school group, beside the 0.50 (primary) and 0.45 (junior) bars."""
    shown = worst_counties(counties, limit)
    if not shown:
        return empty_figure(title, lang)
    names = [c["name"] for c in shown]
    fig = go.Figure()
    bars = {g["group"]: g["bar"] for c in shown for g in c["groups"]}
    for group in ("primary", "junior"):
        values = [next((g["composite_cv"] for g in c["groups"] if g["group"] == group), None) for c in shown]
        passes = [next((g["passes"] for g in c["groups"] if g["group"] == group), None) for c in shown]
        fig.add_trace(go.Bar(
            name=t(f"group.{group}", lang), x=names, y=values, marker_color=GROUP_COLOURS[group],
            marker_line={"color": [POOR if p is False else "rgba(0,0,0,0)" for p in passes], "width": 3},
            text=[f"{v:.2f}" if v else "" for v in values], textposition="outside", textfont={"size": 13},
            cliponaxis=False, hovertemplate="%{x} · " + t(f"group.{group}", lang) + ": %{y:.3f}<extra></extra>"))
    for group, bar in bars.items():
        fig.add_hline(y=bar, line={"color": GROUP_COLOURS[group], "dash": "dash", "width": 2},
                      annotation_text=f"{t('equity.bar', lang)} {t(f'group.{group}', lang)} ≤ {bar:.2f}",
                      annotation_position="top right" if group == "primary" else "bottom right",
                      annotation_font_color=GROUP_COLOURS[group])
    fig.update_layout(barmode="group", uniformtext={"minsize": 12, "mode": "show"})
    fig.update_xaxes(tickangle=-35 if len(names) > 10 else 0)
    return styled(fig, title, legend=True)


def indicators_figure(counties: list[dict], title: str, lang: str, limit: int = 14) -> go.Figure:
    """A heat map of each indicator's CV for the county groups with the highest composite coefficient."""
    pairs = county_groups(counties)[:limit]
    if not pairs:
        return empty_figure(title, lang)
    indicators = [i["indicator"] for i in pairs[0][1]["indicators"]]
    z = [[next((i["cv"] for i in g["indicators"] if i["indicator"] == k), None) for k in indicators]
         for _c, g in pairs]
    fig = go.Figure(go.Heatmap(
        z=z, x=[t(f"indicator.{k}", lang) for k in indicators],
        y=[f"{c['name']} · {t('group.' + g['group'], lang)}" for c, g in pairs],
        colorscale=[[0, GOOD], [0.5, FAIR], [1, POOR]], zmin=0, zmax=1,
        text=[[f"{v:.2f}" if v is not None else "—" for v in row] for row in z], texttemplate="%{text}",
        hovertemplate="%{y}<br>%{x}: %{z:.3f}<extra></extra>", colorbar={"thickness": 12}))
    fig.update_yaxes(autorange="reversed")
    return styled(fig, title).update_layout(margin={"l": 150, "r": 16, "t": 48, "b": 60})


def gap_figure(gap: list[dict], title: str, lang: str) -> go.Figure:
    """Urban, town and rural means of each indicator, scaled so the highest of the three is 100%."""
    rows = [g for g in gap if max((g[k] or 0) for k in LOCALE_COLOURS) > 0]
    if not rows:
        return empty_figure(title, lang)
    labels = [t(f"indicator.{g['indicator']}", lang) for g in rows]
    tops = [max(g[k] or 0 for k in LOCALE_COLOURS) for g in rows]
    fig = go.Figure()
    for locale, colour in LOCALE_COLOURS.items():
        raw = [g[locale] for g in rows]
        fig.add_trace(go.Bar(
            name=t(f"locale.{locale}", lang), x=labels, y=[100 * v / top if v is not None else None
                                                        for v, top in zip(raw, tops, strict=True)],
            marker_color=colour, customdata=raw, text=[f"{v:.2f}" if v is not None else "" for v in raw],
            textposition="outside", hovertemplate="%{x} · " + t(f"locale.{locale}", lang)
            + ": %{customdata:.3f}<extra></extra>"))
    fig.update_layout(barmode="group")
    fig.update_yaxes(ticksuffix="%", range=[0, 115])
    return styled(fig, title, legend=True)
