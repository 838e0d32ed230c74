"""The drawing canvas: streamlit-drawable-canvas, sending each stroke the moment the pen lifts where that
could be set up (panels.compat.canvas_sends_at_once)."""

from __future__ import annotations

from panels import compat

SIZE = 280  # px: fits a phone's screen; preprocessing scales any size to the network's input


def st_canvas(**kwargs):
    """streamlit_drawable_canvas.st_canvas, sending each stroke at once where that could be set up."""
    import streamlit_drawable_canvas as package

    compat.canvas_sends_at_once()
    return package.st_canvas(**kwargs)


def drawing_area(key: str, stroke_width: int = 18):
    """A white square to draw on in black, as MNIST's digits are: the canvas's result (its RGBA image_data,
    None until something is drawn)."""
    return st_canvas(
        stroke_width=stroke_width,
        stroke_color="#000000",
        background_color="#FFFFFF",
        width=SIZE,
        height=SIZE,
        drawing_mode="freedraw",
        return_image_data=True,
        key=key,
    )
