"""Figures of the device page: a device's readings over the last hours, by device kind."""

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures import ACCENT, FAIR, empty_figure, styled
from dashboard.i18n import local_time
from dashboard.readings import label

READINGS = {
    "board": ("cpu_temp_c", "disk_used_pct"),
    "recorder": ("bitrate_kbps", "storage_free_gb"),
    "gateway": ("rx_mbps", "latency_ms"),
}


def history_figure(readings: list[dict], kind: str, title: str, lang: str) -> go.Figure:
    """Two key readings of the device kind over time (x in local time), one panel each."""
    keys = [k for k in READINGS.get(kind, ()) if any(r.get(k) is not None for r in readings)]
    if not readings or not keys:
        return empty_figure(title, lang)
    x = [local_time(r["time"]).strftime("%Y-%m-%d %H:%M:%S") for r in readings]
    fig = make_subplots(rows=len(keys), cols=1, shared_xaxes=True, vertical_spacing=0.14,
                        subplot_titles=[label(k, lang, with_unit=True) for k in keys])
    for row, (key, colour) in enumerate(zip(keys, (ACCENT, FAIR), strict=False), start=1):
        fig.add_trace(go.Scatter(x=x, y=[r.get(key) for r in readings], mode="lines", line={"color": colour, "width": 2},
                                 name=label(key, lang, with_unit=True), connectgaps=False,
                                 hovertemplate="%{x}<br>%{y:.1f}<extra></extra>"),
                      row=row, col=1)
    fig.update_annotations(font={"size": 14})
    fig.update_xaxes(tickformat="%H:%M")
    return styled(fig, title)
