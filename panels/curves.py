"""The Train page's loss and accuracy curves: a small component drawing nnapp.charts.curve_series on a canvas.

A canvas redraws a few hundred points at each poll where a Plotly figure's update re-renders the figure;
Results draws the same series with Plotly (zoom, hover, export).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

JS = (Path(__file__).with_suffix(".js")).read_text(encoding="utf-8")
CSS = """
.curves-root { width: 100%; }
.live-bar { font-family: var(--st-font, sans-serif); color: var(--st-text-color, #31333f); margin: 0 0 0.75rem; }
.live-text { font-size: 14px; line-height: 1.6; margin-bottom: 0.25rem; }
.live-track { height: 0.5rem; border-radius: 0.5rem; background: var(--st-secondary-background-color, #f0f2f6); overflow: hidden; }
.live-fill { height: 100%; width: 0; background: var(--st-primary-color, #2563eb); }
canvas.nnapp-curves { display: block; color: var(--st-text-color, #31333f); font-family: var(--st-font, sans-serif);
  --nnapp-paper: var(--st-background-color, #ffffff); }
"""
HTML = (
    '<div class="live-bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" hidden>'
    '<div class="live-text"></div><div class="live-track"><div class="live-fill"></div></div></div>'
    '<div class="curves-root"></div>'
)


@st.cache_resource
def _component():
    return st.components.v2.component("nnapp_curves", html=HTML, css=CSS, js=JS, isolate_styles=True)


def curves_chart(series: dict, x_max: float, note: str | None = None, key: str = "curves", live: dict | None = None):
    """Draw `series` (charts.curve_series) with the x axis from 0 to `x_max` epochs and `note` over an empty chart.

    With `live` ({url, status, done, text, soon}: panels/live.py) it draws the run's progress bar above and polls
    url for both; its result's `ended` is set in the rerun it starts when the run's status has changed."""
    height = 330 + (52 if live else 0)
    data = {**series, "x_max": x_max, "note": note, "live": live}
    return _component()(data=data, key=key, height=height, on_ended_change=lambda: None)
