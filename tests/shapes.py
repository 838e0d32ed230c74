"""Hand-drawn shapes as a hand varies them: the tests' and benchmarks' stand-in for a person drawing examples
of their own classes on the canvas (the strokes come from nnapp.predict.strokes and tests.digits)."""

import math

import numpy as np
from PIL import Image, ImageDraw

from nnapp.predict.strokes import SHAPES, arc

CLASSES = {
    "circle": [arc(0.5, 0.5, 0.45, 0.45, -90, 275, 36)],
    "triangle": SHAPES["triangle"],
    "arrow": SHAPES["arrow"],
    "zigzag": SHAPES["zigzag"],
    "star": SHAPES["star"],
    "heart": SHAPES["heart"],
}
CANVAS = 280


def varied(name: str, rng: np.random.Generator) -> list[list[tuple[float, float]]]:
    """The shape's strokes turned a little, stretched a little and wobbling, as no two drawings are alike."""
    angle = math.radians(rng.uniform(-12, 12))
    sx, sy = rng.uniform(0.8, 1.1), rng.uniform(0.8, 1.1)
    cos, sin = math.cos(angle), math.sin(angle)
    out = []
    for stroke in CLASSES[name]:
        points = []
        for x, y in stroke:
            dx, dy = (x - 0.5) * sx, (y - 0.5) * sy
            wobble = rng.normal(0, 0.012, 2)
            points.append((0.5 + dx * cos - dy * sin + wobble[0], 0.5 + dx * sin + dy * cos + wobble[1]))
        out.append(points)
    return out


def place(rng: np.random.Generator) -> tuple[float, float, float, float]:
    """A (left, top, width, height) box on the canvas: some small and off-centre, some filling it."""
    side = rng.uniform(90, 220)
    w, h = side * rng.uniform(0.85, 1.15), side * rng.uniform(0.85, 1.15)
    return rng.uniform(15, CANVAS - 15 - w), rng.uniform(15, CANVAS - 15 - h), w, h


def canvas_path(strokes, box) -> list[list[tuple[float, float]]]:
    """The strokes in canvas pixels, for a mouse to follow."""
    left, top, w, h = box
    return [[(left + x * w, top + y * h) for x, y in stroke] for stroke in strokes]


def render(strokes, box, width: int = 18) -> np.ndarray:
    """An RGBA canvas image (black pen on white, as the canvas sends it) of the strokes in `box`."""
    img = Image.new("RGBA", (CANVAS, CANVAS), (255, 255, 255, 255))
    draw = ImageDraw.Draw(img)
    for points in canvas_path(strokes, box):
        draw.line(points, fill=(0, 0, 0, 255), width=width, joint="curve")
        r = width / 2
        for x, y in (points[0], points[-1]):  # round pen ends
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(0, 0, 0, 255))
    return np.asarray(img)


def drawings(names: list[str], per_class: int, seed: int = 0) -> tuple[list[np.ndarray], list[int]]:
    """`per_class` canvas images of each named shape, each drawn anew (RGBA), and their class indices."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for _ in range(per_class):
        for label, name in enumerate(names):
            images.append(render(varied(name, rng), place(rng), int(rng.integers(12, 26))))
            labels.append(label)
    return images, labels


def mouse_draw(page, canvas, strokes) -> None:
    """A Playwright mouse along each stroke on `canvas`: pressed, moved through a point every 25 px or so (the
    canvas's pen keeps only some of the moves between two far-apart points), released."""
    box = canvas.bounding_box()
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
        page.mouse.down()
        for (x0, y0), (x, y) in zip(stroke, stroke[1:], strict=False):
            steps = max(1, int(math.hypot(x - x0, y - y0) // 25))
            page.mouse.move(box["x"] + x, box["y"] + y, steps=steps)
        page.mouse.up()
