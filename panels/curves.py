"""The Train page's loss and accuracy curves: a small component drawing nnapp.charts.curve_series on a canvas.

While a run trains, its page refreshes them every few seconds on a machine whose CPUs the training
needs; a Plotly figure's update cost the browser there 0.2-0.3 CPU-seconds, this canvas a redraw of a
few hundred points. Results draws the same series with Plotly (zoom, hover, export).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

JS = (Path(__file__).with_suffix(".js")).read_text(encoding="utf-8")
CSS = """
.curves-root { width: 100%; }
canvas.nnapp-curves { display: block; color: var(--st-text-color, #31333f); font-family: var(--st-font, sans-serif); }
"""
HTML = '<div class="curves-root"></div>'


@st.cache_resource
def _component():
    return st.components.v2.component("nnapp_curves", html=HTML, css=CSS, js=JS, isolate_styles=True)


def curves_chart(series: dict, x_max: float, note: str | None = None, key: str = "curves") -> None:
    """Draw `series` (charts.curve_series) with the x axis from 0 to `x_max` epochs and `note` over an empty chart."""
    _component()(data={**series, "x_max": x_max, "note": note}, key=key, height=330)
