"""Digits 0-9 as pen strokes in a unit square (y down), and a renderer: the tests' stand-in for a hand."""

import math

import numpy as np
from PIL import Image, ImageDraw


def arc(cx, cy, rx, ry, start, end, n=24):
    """Points on an elliptical arc; angles in degrees, 0 = right, 90 = down."""
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a))) for a in np.linspace(start, end, n)]


STROKES = {
    0: [arc(0.5, 0.5, 0.3, 0.45, 0, 360, 40)],
    1: [[(0.38, 0.18), (0.55, 0.03), (0.55, 0.97)]],
    2: [arc(0.5, 0.3, 0.3, 0.25, 190, 380) + [(0.2, 0.95), (0.85, 0.95)]],
    3: [arc(0.47, 0.27, 0.28, 0.23, 200, 450) + arc(0.47, 0.72, 0.3, 0.25, 270, 520)],
    4: [[(0.62, 0.97), (0.62, 0.03), (0.12, 0.68), (0.88, 0.68)]],
    5: [[(0.8, 0.05), (0.3, 0.05), (0.26, 0.45)] + arc(0.48, 0.68, 0.3, 0.27, 230, 480)],
    6: [[(0.72, 0.05)] + arc(0.5, 0.7, 0.28, 0.26, 215, 575)],
    7: [[(0.12, 0.05), (0.88, 0.05), (0.42, 0.97)]],
    8: [arc(0.5, 0.27, 0.22, 0.22, 90, 450), arc(0.5, 0.72, 0.27, 0.25, -90, 270)],
    9: [arc(0.5, 0.3, 0.26, 0.25, 0, 360, 32), [(0.76, 0.3), (0.7, 0.97)]],
}


def render(digit, size=280, box=(60, 40, 160, 200), width=18, fg=(0, 0, 0, 255), bg=(255, 255, 255, 255)):
    """An RGBA canvas image with `digit` drawn into the (left, top, width, height) box."""
    img = Image.new("RGBA", (size, size), bg)
    draw = ImageDraw.Draw(img)
    left, top, w, h = box
    for stroke in STROKES[digit]:
        pts = [(left + x * w, top + y * h) for x, y in stroke]
        draw.line(pts, fill=fg, width=width, joint="curve")
        r = width / 2
        for x, y in (pts[0], pts[-1]):  # round pen ends
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fg)
    return np.asarray(img)


def canvas_path(digit, box):
    """The strokes in canvas pixels, for a mouse to follow."""
    left, top, w, h = box
    return [[(left + x * w, top + y * h) for x, y in stroke] for stroke in STROKES[digit]]
