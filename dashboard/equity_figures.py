"""Figures of the equity page (优质均衡): county coefficients against the bars, indicator CVs, locale gap.

A coefficient of variation over a handful of schools says nothing: over one school it is 0.000,
which would read as perfectly balanced. A county group with fewer than MIN_SCHOOLS_FOR_CV schools
(or whatever the API says, see `too_few_schools`) is 样本不足 / too few schools: it is neither
达标 nor 未达标, and its coefficients are not drawn.

The bar a group is judged against is the 差异系数 target that applies to its county, as the API
serves it from the target table (`bar`, `target`); where none is set there is no bar and no
verdict, and the cockpit says so rather than assume the national one.
"""

import plotly.graph_objects as go

from dashboard.figures import ACCENT, FAIR, GOOD, POOR, empty_figure, styled
from dashboard.i18n import missing, t

GROUP_COLOURS = {"primary": ACCENT, "junior": "#a78bfa"}
LOCALE_COLOURS = {"urban": ACCENT, "town": FAIR, "rural": "#fb923c"}

# The fewest schools a coefficient of variation is judged over, where the API does not send its own
# (it sends GroupEquity.judged and Equity.min_schools, from EQUITY_MIN_SCHOOLS).
MIN_SCHOOLS_FOR_CV = 5


def min_schools(group: dict | None = None, data: dict | None = None) -> int:
    """The fewest schools a CV is judged over: the API's value when it sends one, else MIN_SCHOOLS_FOR_CV."""
    for source in (group or {}, data or {}):
        if isinstance(source.get("min_schools"), int) and source["min_schools"] > 0:
            return source["min_schools"]
    return MIN_SCHOOLS_FOR_CV


def too_few_schools(group: dict, data: dict | None = None) -> bool:
    """True when the group's coefficient is over too few schools to judge (样本不足).

    The API's own verdict wins (`judged: false`); else the group has fewer schools than
    `min_schools` (the API's, else MIN_SCHOOLS_FOR_CV).
    """
    if group.get("judged") is not None:
        return not group["judged"]
    return (group.get("schools") or 0) < min_schools(group, data)


def verdict(group: dict, data: dict | None = None) -> str:
    """too_few, no_target, pass, fail or no_data: what the 是否达标 column says about a county group."""
    if too_few_schools(group, data):
        return "too_few"
    if missing(group.get("composite_cv")):
        return "no_data"
    if "bar" in group and missing(group["bar"]):
        return "no_target"
    if group.get("passes") is None:
        return "no_data"
    return "pass" if group["passes"] else "fail"


def judged(counties: list[dict], data: dict | None = None) -> list[tuple[dict, dict]]:
    """(county, group) pairs with a coefficient over enough schools to judge, worst (highest) first."""
    return [(c, g) for c, g in county_groups(counties, data) if not too_few_schools(g, data)]


def county_groups(counties: list[dict], data: dict | None = None) -> list[tuple[dict, dict]]:
    """(county, group) pairs that have a composite coefficient: the judged ones worst (highest) first,
    then those over too few schools to judge."""
    pairs = [(c, g) for c in counties for g in c["groups"] if not missing(g["composite_cv"])]
    return sorted(pairs, key=lambda p: (too_few_schools(p[1], data), -p[1]["composite_cv"]))


def worst_counties(counties: list[dict], limit: int, data: dict | None = None) -> list[dict]:
    """The counties with the highest judged composite coefficient in any group, worst first."""
    ranked = []
    for c, _g in judged(counties, data):
        if c not in ranked:
            ranked.append(c)
    return ranked[:limit]


def composite_figure(counties: list[dict], title: str, lang: str, limit: int = 20,
                     data: dict | None = None) -> go.Figure:
    """Each county's composite CV per school group, beside the bars of the targets that apply (a dashed line
    per group and bar; none where no target is set, and a note saying so).

    Groups over too few schools are not drawn; a note under the chart says how many were left out.
    """
    shown = worst_counties(counties, limit, data)
    left_out = sum(1 for _c, g in county_groups(counties, data) if too_few_schools(g, data))
    if not shown:
        fig = empty_figure(title, lang)
        return _too_few_note(fig, left_out, data, lang)
    names = [c["name"] for c in shown]
    fig = go.Figure()

    def group_of(c: dict, group: str) -> dict | None:
        g = next((g for g in c["groups"] if g["group"] == group), None)
        return None if g is None or too_few_schools(g, data) or missing(g["composite_cv"]) else g

    for group in ("primary", "junior"):
        values = [(group_of(c, group) or {}).get("composite_cv") for c in shown]
        passes = [(group_of(c, group) or {}).get("passes") for c in shown]
        fig.add_trace(go.Bar(
            name=t(f"group.{group}", lang), x=names, y=values, marker_color=GROUP_COLOURS[group],
            marker_line={"color": [POOR if p is False else "rgba(0,0,0,0)" for p in passes], "width": 3},
            text=[f"{v:.2f}" if v is not None else "" for v in values], textposition="outside", textfont={"size": 13},
            cliponaxis=False, hovertemplate="%{x} · " + t(f"group.{group}", lang) + ": %{y:.3f}<extra></extra>"))
    drawn = [g for c in shown for g in c["groups"] if not too_few_schools(g, data)]
    _bar_lines(fig, drawn, lang)
    fig.update_layout(barmode="group", uniformtext={"minsize": 12, "mode": "show"})
    fig.update_xaxes(tickangle=-35 if len(names) > 10 else 0)
    return _too_few_note(styled(fig, title, legend=True), left_out, data, lang)


def _bar_lines(fig: go.Figure, groups: list[dict], lang: str) -> None:
    """A dashed line per school group and bar the drawn groups are judged against; a note when a drawn
    group has no target."""
    bars = {(g["group"], g["bar"], ((g.get("target") or {}).get("comparator") or "<=")) for g in groups
            if not missing(g.get("bar"))}
    for group, bar, comparator in sorted(bars):
        fig.add_hline(y=bar, line={"color": GROUP_COLOURS[group], "dash": "dash", "width": 2},
                      annotation_text=f"{t('equity.bar', lang)} {t(f'group.{group}', lang)} "
                                      f"{'≤' if comparator == '<=' else '≥'} {bar:.2f}",
                      annotation_position="top right" if group == "primary" else "bottom right",
                      annotation_font_color=GROUP_COLOURS[group])
    unset = sorted({g["group"] for g in groups if "bar" in g and missing(g["bar"])}, reverse=True)
    if unset:
        text = " · ".join(f"{t(f'group.{group}', lang)} {t('targets.not_set', lang)}" for group in unset)
        # centred above the plot: the too-few note holds the left, the legend the right
        fig.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=1, xanchor="center", yanchor="bottom",
                           showarrow=False, font={"size": 12, "color": "#9ec5ff"}, name="no_target")


def _too_few_note(fig: go.Figure, left_out: int, data: dict | None, lang: str) -> go.Figure:
    if left_out:
        fig.add_annotation(text=t("equity.too_few.count", lang).format(count=left_out, n=min_schools(data=data)),
                           xref="paper", yref="paper", x=0, y=1, xanchor="left", yanchor="bottom", showarrow=False,
                           font={"size": 12, "color": "#9ec5ff"}, name="too_few")
    return fig


def indicator_cv(group: dict, key: str, data: dict | None = None) -> float | None:
    """One indicator's CV in a group, or None when there is none or it is over too few schools."""
    item = next((i for i in group["indicators"] if i["indicator"] == key), None)
    if item is None or missing(item["cv"]) or too_few_schools(group, data):
        return None
    if item.get("schools") is not None and item["schools"] < min_schools(group, data):
        return None
    return item["cv"]


def indicators_figure(counties: list[dict], title: str, lang: str, limit: int = 14,
                      data: dict | None = None) -> go.Figure:
    """A heat map of each indicator's CV for the judged county groups with the highest composite coefficient."""
    pairs = judged(counties, data)[:limit]
    if not pairs:
        return empty_figure(title, lang)
    indicators = [i["indicator"] for i in pairs[0][1]["indicators"]]
    z = [[indicator_cv(g, k, data) for k in indicators] for _c, g in pairs]
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
    def value(g: dict, locale: str) -> float | None:
        return None if missing(g[locale]) else g[locale]

    rows = [g for g in gap if max((value(g, k) or 0) for k in LOCALE_COLOURS) > 0]
    if not rows:
        return empty_figure(title, lang)
    labels = [t(f"indicator.{g['indicator']}", lang) for g in rows]
    tops = [max(value(g, k) or 0 for k in LOCALE_COLOURS) for g in rows]
    fig = go.Figure()
    for locale, colour in LOCALE_COLOURS.items():
        raw = [value(g, locale) for g in rows]
        fig.add_trace(go.Bar(
            name=t(f"locale.{locale}", lang), x=labels, y=[100 * v / top if v is not None else None
                                                        for v, top in zip(raw, tops, strict=True)],
            marker_color=colour, customdata=raw, text=[f"{v:.2f}" if v is not None else "" for v in raw],
            textposition="outside", hovertemplate="%{x} · " + t(f"locale.{locale}", lang)
            + ": %{customdata:.3f}<extra></extra>"))
    fig.update_layout(barmode="group")
    fig.update_yaxes(ticksuffix="%", range=[0, 115])
    return styled(fig, title, legend=True)
