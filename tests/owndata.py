"""Data sets of your own for the tests: shapes drawn through the canvas path into a store, and zips of class
folders of PNGs (grey drawings, or colour pictures whose class is its shape and colour)."""

import io
import zipfile

import numpy as np
from PIL import Image, ImageDraw

from nnapp.data.make import add_drawing
from tests.shapes import drawings

NAMES = ["circle", "triangle", "arrow"]


def drawn_set(store, name: str = "shapes", names=NAMES, per_class: int = 12, seed: int = 0):
    """A data set of `per_class` drawings of each shape, each saved as the Data page saves one (add_drawing)."""
    store.create_dataset(name, names)
    images, labels = drawings(names, per_class, seed)
    for image, label in zip(images, labels, strict=True):
        made = add_drawing(store, name, image, label)
    return made


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, blob in files.items():
            zf.writestr(name, blob)
    return buf.getvalue()


def drawn_zip(names=NAMES, per_class: int = 12, seed: int = 0, top: str = "shapes") -> bytes:
    """A zip of class folders of drawings as PNG files (black on white, 280×280)."""
    images, labels = drawings(names, per_class, seed)
    return zip_of(
        {
            f"{top}/{names[label]}/{i}.png": png(image[..., :3])
            for i, (image, label) in enumerate(zip(images, labels, strict=True))
        }
    )


COLOURS = {"red disc": ((200, 30, 30), "disc"), "green square": ((30, 160, 40), "square"), "blue bar": ((40, 60, 210), "bar")}


def colour_picture(cls: str, rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """A colour picture of `cls` (its colour and shape) on a light, noisy ground, placed and sized at random."""
    colour, shape = COLOURS[cls]
    ground = tuple(int(v) for v in rng.integers(200, 255, 3))
    img = Image.new("RGB", (size, size), ground)
    draw = ImageDraw.Draw(img)
    side = int(rng.integers(size // 3, size // 2 + 10))
    x, y = (int(v) for v in rng.integers(4, size - side - 4, 2))
    jitter = tuple(int(np.clip(c + rng.integers(-25, 25), 0, 255)) for c in colour)
    if shape == "disc":
        draw.ellipse((x, y, x + side, y + side), fill=jitter)
    elif shape == "square":
        draw.rectangle((x, y, x + side, y + side), fill=jitter)
    else:
        draw.rectangle((x, y + side // 3, x + side, y + 2 * side // 3), fill=jitter)
    noise = rng.integers(-12, 12, (size, size, 3))
    return np.clip(np.asarray(img, np.int16) + noise, 0, 255).astype(np.uint8)


def colour_zip(per_class: int = 15, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return zip_of({f"{cls}/{i}.png": png(colour_picture(cls, rng)) for cls in COLOURS for i in range(per_class)})
