"""The drawing canvas: streamlit-drawable-canvas, sending each stroke the moment the pen lifts where that
could be set up (panels.compat.canvas_sends_at_once)."""

from __future__ import annotations

from panels import compat


def st_canvas(**kwargs):
    """streamlit_drawable_canvas.st_canvas, sending each stroke at once where that could be set up."""
    import streamlit_drawable_canvas as package

    compat.canvas_sends_at_once()
    return package.st_canvas(**kwargs)
