"""Pen strokes in a unit square (y down): digits drawn in several hands, and hand-drawn shapes that are not digits.

The digits teach the not-a-digit check what a digit drawn on a canvas looks like after preprocessing
(MNIST alone would make every canvas drawing look foreign). The shapes are held out: the check never
trains on them, they only measure it (nnapp.nondigits.heldout).
"""

from __future__ import annotations

import math

import numpy as np

Stroke = list[tuple[float, float]]


def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, n: int = 20) -> Stroke:
    """Points on an elliptical arc; angles in degrees, 0 = right, 90 = down."""
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a))) for a in np.linspace(start, end, n)]


def digit(d: int, rng: np.random.Generator) -> list[Stroke]:
    """Digit `d` in one of several common hands, its proportions varied by `rng`."""
    u, coin = rng.uniform, lambda p: rng.random() < p
    if d == 0:
        return [arc(0.5, 0.5, u(0.3, 0.45), 0.47, u(-100, -80), u(260, 290), 36)]
    if d == 1:
        top = (u(0.45, 0.6), 0.03)
        stem = ([(u(0.2, 0.4), u(0.15, 0.3)), top] if coin(0.5) else [top]) + [(u(0.4, 0.6), 0.97)]
        return [stem, [(0.25, 0.97), (0.75, 0.97)]] if coin(0.25) else [stem]
    if d == 2:
        base = u(0.9, 0.98)
        return [arc(0.5, 0.3, u(0.28, 0.38), 0.27, u(170, 200), u(350, 390)) + [(u(0.1, 0.25), base), (u(0.75, 0.95), base)]]
    if d == 3:
        if coin(0.3):  # flat-topped
            return [[(0.15, 0.05), (0.85, 0.05), (0.45, 0.4)] + arc(0.48, 0.68, 0.32, 0.28, 270, 500)]
        return [arc(0.5, 0.26, u(0.25, 0.33), 0.23, u(190, 220), 450) + arc(0.5, 0.72, u(0.3, 0.37), 0.25, 270, u(490, 520))]
    if d == 4:
        x, y = u(0.55, 0.7), u(0.6, 0.72)
        if coin(0.5):  # open top
            return [[(u(0.15, 0.3), 0.03), (0.1, y), (0.9, y)], [(x, 0.2), (x, 0.97)]]
        return [[(x, 0.97), (x, 0.03), (0.1, y), (0.9, y)]]
    if d == 5:
        return [[(u(0.7, 0.9), 0.04), (0.3, 0.04), (u(0.22, 0.3), 0.45)] + arc(0.48, 0.7, u(0.3, 0.38), 0.26, 220, u(470, 500))]
    if d == 6:
        return [[(u(0.65, 0.85), 0.03)] + arc(0.5, 0.7, u(0.27, 0.35), 0.27, 210, 570)]
    if d == 7:
        seven = [[(0.1, 0.05), (0.9, 0.05), (u(0.3, 0.55), 0.97)]]
        return [*seven, [(0.35, 0.5), (0.8, 0.5)]] if coin(0.3) else seven
    if d == 8:
        if coin(0.5):  # two loops
            return [arc(0.5, 0.26, u(0.2, 0.28), 0.23, 90, 450), arc(0.5, 0.72, u(0.26, 0.34), 0.25, -90, 270)]
        return [arc(0.5, 0.26, 0.25, 0.23, 90, -180) + arc(0.5, 0.73, 0.3, 0.25, -90, 180)[::-1] + [(0.5, 0.49)]]
    loop = arc(0.45, 0.3, u(0.25, 0.32), 0.26, 0, 360, 30)  # 9
    tail = [(0.72, 0.3), (u(0.55, 0.75), 0.97)] if coin(0.6) else arc(0.45, 0.55, 0.28, 0.42, 0, 110, 12)
    return [loop, tail]


def _spiral() -> Stroke:
    return [
        (0.5 + 0.45 * t * math.cos(t * 5 * math.pi), 0.5 + 0.45 * t * math.sin(t * 5 * math.pi)) for t in np.linspace(0.02, 1, 60)
    ]


# Letters and symbols as a hand draws them on a canvas: measurement only, never training data.
SHAPES: dict[str, list[Stroke]] = {
    "A": [[(0.1, 0.95), (0.5, 0.05), (0.9, 0.95)], [(0.28, 0.6), (0.72, 0.6)]],
    "E": [[(0.85, 0.05), (0.2, 0.05), (0.2, 0.95), (0.85, 0.95)], [(0.2, 0.5), (0.7, 0.5)]],
    "F": [[(0.85, 0.05), (0.2, 0.05), (0.2, 0.95)], [(0.2, 0.5), (0.7, 0.5)]],
    "H": [[(0.15, 0.05), (0.15, 0.95)], [(0.85, 0.05), (0.85, 0.95)], [(0.15, 0.5), (0.85, 0.5)]],
    "K": [[(0.2, 0.05), (0.2, 0.95)], [(0.85, 0.05), (0.2, 0.55), (0.85, 0.95)]],
    "M": [[(0.1, 0.95), (0.1, 0.05), (0.5, 0.6), (0.9, 0.05), (0.9, 0.95)]],
    "N": [[(0.15, 0.95), (0.15, 0.05), (0.85, 0.95), (0.85, 0.05)]],
    "R": [[(0.2, 0.95), (0.2, 0.05), *arc(0.45, 0.28, 0.3, 0.23, -90, 90), (0.85, 0.95)]],
    "V": [[(0.1, 0.05), (0.5, 0.95), (0.9, 0.05)]],
    "W": [[(0.05, 0.05), (0.28, 0.95), (0.5, 0.35), (0.72, 0.95), (0.95, 0.05)]],
    "X": [[(0.1, 0.05), (0.9, 0.95)], [(0.9, 0.05), (0.1, 0.95)]],
    "Y": [[(0.1, 0.05), (0.5, 0.5), (0.9, 0.05)], [(0.5, 0.5), (0.5, 0.95)]],
    "#": [[(0.35, 0.05), (0.3, 0.95)], [(0.7, 0.05), (0.65, 0.95)], [(0.05, 0.35), (0.95, 0.35)], [(0.05, 0.68), (0.95, 0.68)]],
    "+": [[(0.5, 0.05), (0.5, 0.95)], [(0.05, 0.5), (0.95, 0.5)]],
    "*": [[(0.5, 0.05), (0.5, 0.95)], [(0.1, 0.27), (0.9, 0.73)], [(0.9, 0.27), (0.1, 0.73)]],
    "smiley": [arc(0.5, 0.5, 0.45, 0.45, 0, 360, 40), arc(0.5, 0.5, 0.25, 0.22, 20, 160, 16), [(0.35, 0.33)], [(0.65, 0.33)]],
    "star": [[(0.5, 0.02), (0.79, 0.95), (0.02, 0.37), (0.98, 0.37), (0.21, 0.95), (0.5, 0.02)]],
    "triangle": [[(0.5, 0.05), (0.95, 0.95), (0.05, 0.95), (0.5, 0.05)]],
    "square": [[(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.1, 0.9), (0.1, 0.1)]],
    "heart": [
        arc(0.3, 0.3, 0.22, 0.2, 180, 360, 16)
        + arc(0.7, 0.3, 0.22, 0.2, 180, 360, 16)
        + [(0.92, 0.35), (0.5, 0.95), (0.08, 0.35)]
    ],
    "spiral": [_spiral()],
    "check": [[(0.05, 0.55), (0.35, 0.95), (0.95, 0.05)]],
    "arrow": [[(0.05, 0.5), (0.95, 0.5)], [(0.65, 0.2), (0.95, 0.5), (0.65, 0.8)]],
    "zigzag": [[(0.05, 0.1), (0.95, 0.25), (0.05, 0.45), (0.95, 0.6), (0.05, 0.8), (0.95, 0.95)]],
    "wave": [[(t, 0.5 + 0.4 * math.sin(t * 4 * math.pi)) for t in np.linspace(0, 1, 40)]],
    "grid": [[(x, 0.1), (x, 0.9)] for x in (0.1, 0.5, 0.9)] + [[(0.1, y), (0.9, y)] for y in (0.1, 0.5, 0.9)],
    "house": [[(0.1, 0.95), (0.1, 0.4), (0.5, 0.05), (0.9, 0.4), (0.9, 0.95), (0.1, 0.95)]],
    "cat": [
        arc(0.5, 0.6, 0.4, 0.35, 0, 360, 40),
        [(0.15, 0.4), (0.2, 0.05), (0.4, 0.27)],
        [(0.6, 0.27), (0.8, 0.05), (0.85, 0.4)],
    ],
}
