"""Drawings that are not digits, made here and nowhere else: the tests' own held-out set for the not-a-digit check.

Built differently from everything nnapp.ood trains on (DejaVu glyphs, random pen walks, random outlines,
MNIST pieces, nnapp.strokes' digits) and from nnapp's own held-out set (nnapp.strokes.SHAPES): other
letters and symbols, square-ended pens of other widths, outlined and italic letters of the Liberation
fonts at other sizes.
"""

import glob
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def ring(cx, cy, r, n=32, start=0, end=360):
    return [(cx + r * math.cos(math.radians(a)), cy + r * math.sin(math.radians(a))) for a in np.linspace(start, end, n)]


# unit square, y down
SHAPES = {
    "A": [[(0.15, 1.0), (0.5, 0.0), (0.85, 1.0)], [(0.3, 0.58), (0.7, 0.58)]],
    "X": [[(0.0, 0.0), (1.0, 1.0)], [(1.0, 0.0), (0.0, 1.0)]],
    "W": [[(0.0, 0.0), (0.2, 1.0), (0.5, 0.3), (0.8, 1.0), (1.0, 0.0)]],
    "#": [[(0.3, 0.0), (0.25, 1.0)], [(0.75, 0.0), (0.7, 1.0)], [(0.0, 0.3), (1.0, 0.3)], [(0.0, 0.7), (1.0, 0.7)]],
    "smiley": [
        ring(0.5, 0.5, 0.5),
        ring(0.5, 0.45, 0.3, 12, 30, 150),
        [(0.32, 0.32), (0.34, 0.34)],
        [(0.66, 0.32), (0.68, 0.34)],
    ],
    "k": [[(0.2, 0.0), (0.2, 1.0)], [(0.75, 0.45), (0.2, 0.75)], [(0.4, 0.63), (0.8, 1.0)]],
    "m": [
        [(0.0, 1.0), (0.0, 0.3)] + ring(0.25, 0.45, 0.25, 12, 180, 360) + [(0.5, 1.0)],
        ring(0.75, 0.45, 0.25, 12, 180, 360) + [(1.0, 1.0)],
    ],
    "T": [[(0.0, 0.0), (1.0, 0.0)], [(0.5, 0.0), (0.5, 1.0)]],
    "U": [[(0.1, 0.0)] + ring(0.5, 0.6, 0.4, 16, 180, 0) + [(0.9, 0.0)]],
    "L": [[(0.2, 0.0), (0.2, 1.0), (0.9, 1.0)]],
    "P": [[(0.2, 1.0), (0.2, 0.0)] + ring(0.45, 0.27, 0.27, 16, -90, 90)[1:] + [(0.2, 0.54)]],
    "hexagon": [ring(0.5, 0.5, 0.5, 7)],
    "sun": [ring(0.5, 0.5, 0.22)]
    + [
        [(0.5 + 0.3 * math.cos(a), 0.5 + 0.3 * math.sin(a)), (0.5 + 0.5 * math.cos(a), 0.5 + 0.5 * math.sin(a))]
        for a in np.linspace(0, 2 * math.pi, 9)[:-1]
    ],
    "bolt": [[(0.6, 0.0), (0.2, 0.55), (0.55, 0.5), (0.35, 1.0), (0.85, 0.4), (0.5, 0.45), (0.75, 0.0)]],
    "envelope": [[(0.0, 0.2), (1.0, 0.2), (1.0, 0.8), (0.0, 0.8), (0.0, 0.2), (0.5, 0.55), (1.0, 0.2)]],
    "stick figure": [
        ring(0.5, 0.15, 0.15, 20),
        [(0.5, 0.3), (0.5, 0.7)],
        [(0.2, 0.45), (0.8, 0.45)],
        [(0.25, 1.0), (0.5, 0.7), (0.75, 1.0)],
    ],
    "fish": [ring(0.45, 0.5, 0.35, 24, 30, 330), [(0.75, 0.3), (1.0, 0.7), (1.0, 0.3), (0.75, 0.7)], [(0.3, 0.42), (0.31, 0.43)]],
    "cross-hatch": [[(x, 0.0), (x + 0.3, 1.0)] for x in (0.0, 0.25, 0.5)] + [[(0.0, y), (1.0, y)] for y in (0.25, 0.75)],
    "flower": [ring(0.5, 0.5, 0.12, 12)]
    + [ring(0.5 + 0.3 * math.cos(a), 0.5 + 0.3 * math.sin(a), 0.17, 14) for a in np.linspace(0, 2 * math.pi, 6)[:-1]],
    "scribble": [[(0.1, 0.2), (0.9, 0.3), (0.2, 0.5), (0.85, 0.55), (0.15, 0.8), (0.9, 0.9), (0.4, 0.1)]],
}
LETTERS = "AKMNRWXYEFHPTUVkmnwxyaehr#%&@*+?"
PENS = (5, 12, 20, 28, 36)


def strokes_image(strokes, box, pen, size=280):
    """Square-ended pen lines (PIL's own ends, no round caps) in a (left, top, width, height) box."""
    img = Image.new("RGBA", (size, size), (255, 255, 255, 255))
    draw = ImageDraw.Draw(img)
    left, top, w, h = box
    for stroke in strokes:
        draw.line([(left + x * w, top + y * h) for x, y in stroke], fill=(0, 0, 0, 255), width=pen)
    return np.asarray(img)


def font_image(char, font_path, size, outline, angle, canvas=280):
    img = Image.new("L", (canvas, canvas), 255)
    font = ImageFont.truetype(font_path, size)
    draw = ImageDraw.Draw(img)
    box = draw.textbbox((0, 0), char, font=font, stroke_width=outline)
    at = ((canvas - box[2] - box[0]) / 2, (canvas - box[3] - box[1]) / 2)
    # an outlined letter: dark outline, white inside
    draw.text(at, char, font=font, fill=255 if outline else 0, stroke_width=outline, stroke_fill=0)
    return np.asarray(img.rotate(angle, fillcolor=255))


def nondigits(seed=0):
    """(name, RGBA or grey canvas) pairs: every shape with every pen in two boxes, and font letters."""
    rng = np.random.default_rng(seed)
    out = []
    for name, strokes in SHAPES.items():
        for pen in PENS:
            for box in ((40, 30, 200, 220), (150 - pen, 20, 110, 120)):
                out.append((f"{name} pen {pen}", strokes_image(strokes, box, pen)))
    fonts = sorted(glob.glob("/usr/share/fonts/truetype/liberation/Liberation*Italic.ttf"))
    fonts += sorted(glob.glob("/usr/share/fonts/truetype/liberation/LiberationMono-*.ttf"))
    for font in fonts:
        for char in LETTERS:
            outline = int(rng.choice([0, 4]))
            out.append(
                (
                    f"{char} {font.rsplit('/', 1)[-1]}",
                    font_image(char, font, int(rng.integers(90, 200)), outline, rng.uniform(-15, 15)),
                )
            )
    return out
