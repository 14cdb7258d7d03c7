"""Figures of the three classrooms (三个课堂) and of the communities (教联体)."""

from datetime import date, datetime, timedelta

import plotly.graph_objects as go

from dashboard.figures import ACCENT, FAIR, GOOD, POOR, Bands, empty_figure, rate_colour, styled
from dashboard.i18n import local_tz, missing, t

KIND_COLOURS = {"dedicated": ACCENT, "master": "#a78bfa", "elite": FAIR}
COMMUNITY_COLOURS = {"merged": ACCENT, "co_built": "#a78bfa", "collaborative": FAIR, "mixed": GOOD}


def week_in_progress(week: dict, today: date | None = None) -> bool:
    """True for the ISO week that has not ended yet (the API's `complete` wins when it sends one)."""
    if week.get("complete") is not None:
        return not week["complete"]
    if not week.get("week_start"):
        return False
    start = date.fromisoformat(str(week["week_start"])[:10])
    today = today or datetime.now(local_tz()).date()
    return start <= today < start + timedelta(days=7)


def weekly_figure(weeks: list[dict], title: str, lang: str, today: date | None = None) -> go.Figure:
    """Sessions held, interrupted and missed per ISO week (bars) and the opening rate (line, right axis).

    The week still in progress has only the sessions due so far: its bars are faint and its
    point hollow, labelled 进行中 / in progress, so a short bar does not read as a bad week.
    A week without a rate has no point (never 0 %).
    """
    weeks = [w for w in weeks if w["sessions_past"]]
    if not weeks:
        return empty_figure(title, lang)
    x = [w["week"] for w in weeks]
    current = [week_in_progress(w, today) for w in weeks]
    opacity = [0.45 if c else 1.0 for c in current]
    note = [t("trend.in_progress", lang) if c else "" for c in current]
    rates = [None if missing(w["opening_rate"]) else w["opening_rate"] for w in weeks]

    def bars(key: str, name: str, colour: str) -> go.Bar:
        return go.Bar(name=t(name, lang), x=x, y=[w[key] for w in weeks], marker={"color": colour, "opacity": opacity},
                      customdata=note, hovertemplate="%{x} %{customdata}<br>%{y}<extra>" + t(name, lang) + "</extra>")

    fig = go.Figure([
        bars("sessions_held", "lessons.held", GOOD),
        bars("sessions_interrupted", "lessons.interrupted", FAIR),
        bars("sessions_missed", "lessons.missed", POOR),
        go.Scatter(name=t("lessons.opening_rate", lang), x=x, y=[None if r is None else r * 100 for r in rates],
                   yaxis="y2", mode="lines+markers+text", line={"color": "#fff", "width": 3}, connectgaps=False,
                   marker={"size": 9, "symbol": ["circle-open" if c else "circle" for c in current]},
                   text=[f"{r * 100:.0f}%" if r is not None else "—" for r in rates],
                   customdata=note, textposition="top center",
                   hovertemplate="%{x} %{customdata}<br>%{text}<extra></extra>"),
    ])
    for week, now in zip(x, current, strict=True):
        if now:
            fig.add_annotation(x=week, y=0, yref="paper", yanchor="top", yshift=-22, showarrow=False,
                               text=t("trend.in_progress", lang), font={"size": 12, "color": "#9ec5ff"},
                               hovertext=t("trend.in_progress.week", lang), name="in_progress")
    fig.update_layout(barmode="stack", yaxis2={"overlaying": "y", "side": "right", "range": [0, 115],
                                                "tickvals": [0, 25, 50, 75, 100], "ticksuffix": "%",
                                                "showgrid": False})
    return styled(fig, title, legend=True)


def kinds_figure(figures: list[dict], title: str, lang: str) -> go.Figure:
    """Opening rate (开课率) of each kind of classroom this week, with held / past sessions."""
    kinds = [f for f in figures if f["kind"] != "all" and f["sessions_past"]]
    if not kinds:
        return empty_figure(title, lang)
    rates = [None if missing(f["opening_rate"]) else f["opening_rate"] for f in kinds]
    fig = go.Figure(go.Bar(
        x=[t(f"lessons.kind.{f['kind']}", lang) for f in kinds], y=[None if r is None else r * 100 for r in rates],
        marker_color=[KIND_COLOURS.get(f["kind"], ACCENT) for f in kinds],
        text=[f"{'—' if r is None else f'{r * 100:.0f}%'}  ({f['sessions_held']}/{f['sessions_past']})"
              for r, f in zip(rates, kinds, strict=True)],
        textposition="outside", hovertemplate="%{x}: %{y:.1f}%<extra></extra>"))
    fig.update_yaxes(range=[0, 115], ticksuffix="%")
    return styled(fig, title)


def coverage_figure(children: list[dict], targets: list[dict], title: str, lang: str) -> go.Figure:
    """Each child's share of compulsory schools inside a community, against the scope's community_coverage
    targets as the API serves them from the target table: one dashed line per target, bars coloured against
    the highest (within ten points is fair). Without a target there is no line and no colour, and the chart
    says no target is set."""
    rows = [c for c in children if not missing(c["figures"]["coverage_rate"])]
    if not rows:
        return empty_figure(title, lang)
    rows.sort(key=lambda c: c["figures"]["coverage_rate"])
    bar = max((g["value"] for g in targets), default=None)
    bands = None if bar is None else Bands(good=bar, fair=bar - 0.1)
    rates = [c["figures"]["coverage_rate"] for c in rows]
    fig = go.Figure(go.Bar(
        x=[c["name"] for c in rows], y=[r * 100 for r in rates], marker_color=[rate_colour(r, bands) for r in rates],
        customdata=[[c["level"], c["code"]] for c in rows], text=[f"{r * 100:.0f}%" for r in rates],
        textposition="outside", hovertemplate="%{x}: %{y:.1f}%<extra></extra>"))
    for goal in targets:
        fig.add_hline(y=goal["value"] * 100, line={"dash": "dash", "color": "#9ec5ff", "width": 1.5},
                      annotation_text=f"{goal['deadline']} {goal['comparator']} {goal['value'] * 100:.0f}%",
                      annotation_position="top left", annotation_font_color="#9ec5ff")
    if not targets:
        fig.add_annotation(text=t("targets.not_set", lang), xref="paper", yref="paper", x=1, y=1, xanchor="right",
                           yanchor="bottom", showarrow=False, font={"size": 12, "color": "#9ec5ff"}, name="no_target")
    fig.update_yaxes(range=[0, 115], ticksuffix="%")
    fig.update_xaxes(tickangle=-35 if len(rows) > 10 else 0)
    return styled(fig, title)


def community_kinds_figure(by_kind: dict[str, int], title: str, lang: str) -> go.Figure:
    """Communities by kind (融合型, 共建型, 协作型, 融合+共建) as a ring."""
    kinds = [k for k, n in by_kind.items() if n]
    if not kinds:
        return empty_figure(title, lang)
    fig = go.Figure(go.Pie(
        labels=[t(f"community.kind.{k}", lang) for k in kinds], values=[by_kind[k] for k in kinds], hole=0.55,
        marker={"colors": [COMMUNITY_COLOURS.get(k, ACCENT) for k in kinds], "line": {"color": "#06122b", "width": 2}},
        textinfo="label+value", textfont={"size": 15}, insidetextorientation="horizontal", sort=False))
    return styled(fig, title, legend=False)
