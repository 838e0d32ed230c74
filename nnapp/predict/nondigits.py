"""Drawings made on this machine and put through the canvas path (nnapp.predict.preprocess), as the model sees them.

Two families that share no construction:
- material the not-a-digit check trains on (`Bank.negatives`, `Bank.digits`, `mnist_mixes`, `mnist_on_canvas`):
  glyphs of the DejaVu fonts (Latin, Greek, Cyrillic, Armenian, Hebrew, Georgian, arrows, maths, dingbats),
  random pen walks, random polygons, ellipses and boxes, MNIST digits overlaid, glued or turned; and as
  digits, nnapp.strokes' hands in random pens, the fonts' digits and MNIST digits drawn large on a canvas;
- held-out negatives that only measure it (`Bank.heldout`): the hand-drawn letters and symbols of
  nnapp.strokes.SHAPES, and Latin letters and symbols of the Liberation fonts.
The fixed part is made once per machine (seconds) and cached beside the data sets.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from nnapp.engine.data import cache_dir
from nnapp.predict import strokes
from nnapp.predict.images import preprocess
from nnapp.system.files import check_regular

VERSION = 1
MAX_BANK = 512 << 20  # bytes of the cached bank: a few tens of thousands of 28×28 images, compressed
FONT_DIRS = [
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "/Library/Fonts",
    "~/Library/Fonts",
]
# Unicode blocks the glyph negatives come from
BLOCKS = [(0x21, 0x7E), (0xA1, 0x17F), (0x391, 0x3C9), (0x410, 0x44F), (0x531, 0x586), (0x5D0, 0x5EA), (0x10D0, 0x10FA)]
BLOCKS += [(0x2190, 0x23FF), (0x25A0, 0x27BF), (0x2A00, 0x2AFF)]
# Glyphs a reader could take for a digit (O, l, S, Z, b, g, q, З, Ч, б, circles, bars...) are not negatives.
LOOKALIKES = set("0123456789¹²³¼½¾OoIl|!iSsZzBbGgqJj',.`´¸¦:;-_~¬¯°·•ΟοΙιЗзЧчбОоЅѕІіЈјδϑðØøΘθ∞○◯●◦∘⊘⁄∕/\\()[]{}")
for _lo, _hi in [
    (0xCC, 0xCF),
    (0xD2, 0xD6),
    (0xEC, 0xEF),
    (0xF2, 0xF6),
    (0x11C, 0x137),
    (0x14C, 0x151),
    (0x15A, 0x161),
    (0x179, 0x17F),
]:
    LOOKALIKES |= {chr(c) for c in range(_lo, _hi + 1)}
HELDOUT_GLYPHS = "ACEFHKMNPRTUVWXYacdefhkmnprtuvwxy#@%&*+=?$"
PENS = (3, 6, 10, 16, 24, 32)  # pen widths on a 280 px canvas


@dataclass(frozen=True)
class Bank:
    """28×28 uint8 images as the model sees them."""

    negatives: np.ndarray  # training material: not digits
    digits: np.ndarray  # training material: digits drawn on a canvas or set in a font
    heldout: np.ndarray  # measurement only: not digits, made differently
    heldout_kind: np.ndarray  # what each held-out image is ("A", "smiley", "Liberation Serif: &", ...)


def find_fonts(prefix: str) -> list[Path]:
    """TrueType files of a font family on this machine, e.g. find_fonts('DejaVu')."""
    found = set()
    for folder in FONT_DIRS:
        root = Path(folder).expanduser()
        if root.is_dir():
            found.update(root.rglob(f"{prefix}*.ttf"))
    return sorted(found)


@functools.lru_cache(maxsize=64)
def glyphs(font_path: Path) -> tuple[str, ...]:
    """The characters of BLOCKS that the font draws (not as its missing-glyph box), lookalikes left out."""
    font = ImageFont.truetype(str(font_path), 40)
    missing = np.asarray(font.getmask("\ue000"))
    found = []
    for lo, hi in BLOCKS:
        for char in map(chr, range(lo, hi + 1)):
            mask = font.getmask(char)
            if char in LOOKALIKES or not mask.size[0] * mask.size[1]:
                continue
            pixels = np.asarray(mask)
            if not (pixels.shape == missing.shape and np.array_equal(pixels, missing)):
                found.append(char)
    return tuple(found)


def digits28(images: list[np.ndarray]) -> np.ndarray:
    """Canvas images -> the 28×28 uint8 digits preprocess makes of them (blank ones dropped)."""
    out = [s.digit for s in map(preprocess, images) if s is not None]
    return np.round(np.stack(out) * 255).astype(np.uint8) if out else np.zeros((0, 28, 28), np.uint8)


def draw_strokes(lines: list[strokes.Stroke], rng: np.random.Generator, wobble: float = 0.006, size: int = 280) -> np.ndarray:
    """Strokes drawn with a round pen at a random place, size, slant and width on a white canvas."""
    img = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(img)
    h = rng.uniform(0.25, 0.95) * size
    w = min(h * rng.uniform(0.5, 1.3), 0.95 * size)
    left, top, slant = rng.uniform(2, size - w - 2), rng.uniform(2, size - h - 2), rng.uniform(-0.2, 0.2)
    pen = int(rng.choice(PENS))
    for line in lines:
        pts = [
            (left + (x + slant * (0.5 - y) + rng.normal(0, wobble)) * w, top + (y + rng.normal(0, wobble)) * h) for x, y in line
        ]
        draw.line(pts if len(pts) > 1 else pts * 2, fill=0, width=pen, joint="curve")
        for x, y in (pts[0], pts[-1]):
            draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=0)
    return np.asarray(img)


def draw_glyph(char: str, font_path: Path, rng: np.random.Generator) -> np.ndarray:
    """A character set in a font at a random size, weight and tilt, dark on white."""
    size = int(rng.uniform(60, 160))
    font = ImageFont.truetype(str(font_path), size)
    bold = int(rng.choice([0, 0, 1, 3])) if size > 80 else 0
    img = Image.new("L", (int(size * 2.2), int(size * 2.2)), 255)
    ImageDraw.Draw(img).text((size * 0.4, size * 0.3), char, font=font, fill=0, stroke_width=bold, stroke_fill=0)
    if rng.random() < 0.5:
        img = img.rotate(rng.uniform(-20, 20), fillcolor=255, resample=Image.Resampling.BILINEAR)
    return np.asarray(img)


def pen_walk(rng: np.random.Generator) -> list[strokes.Stroke]:
    """One to four strokes of a pen wandering with momentum: scribbles."""
    lines = []
    for _ in range(rng.integers(1, 5)):
        p, d = rng.random(2), rng.normal(0, 1, 2)
        line = [tuple(p)]
        for _ in range(rng.integers(4, 30)):
            d = 0.8 * d + rng.normal(0, 0.6, 2)
            p = np.clip(p + 0.06 * d, 0, 1)
            line.append(tuple(p))
        lines.append(line)
    return lines


def outlines(rng: np.random.Generator, size: int = 200) -> np.ndarray:
    """Two or three random polygons, ellipses or boxes (one alone could pass for a 0 or a 7)."""
    img = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(img)
    pen = int(rng.choice([2, 5, 9, 14]))
    for _ in range(rng.integers(2, 4)):
        kind = rng.integers(3)
        if kind == 0:
            pts = [tuple(p) for p in rng.uniform(10, size - 10, (rng.integers(3, 8), 2))]
            draw.line(pts + pts[:1] * int(rng.random() < 0.5), fill=0, width=pen, joint="curve")
            continue
        x0, y0 = rng.uniform(5, size * 0.6, 2)
        box = (x0, y0, x0 + rng.uniform(20, size * 0.4), y0 + rng.uniform(20, size * 0.4))
        (draw.ellipse if kind == 1 else draw.rectangle)(box, outline=0, width=pen)
    return np.asarray(img)


def mnist_mixes(x: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Not digits made of digits: two overlaid, two side by side, halves of two, one turned over its mirror image."""
    out = []
    for i in range(n):
        a, b = x[rng.integers(len(x))], x[rng.integers(len(x))]
        kind = i % 4
        if kind == 0:
            mix = np.maximum(a, np.roll(b, tuple(rng.integers(-8, 9, 2)), (0, 1)))
        elif kind == 1:
            mix = np.asarray(Image.fromarray(np.concatenate([a, b], 1)).resize((28, 28)))
        elif kind == 2:
            mix = np.concatenate([a[:14], np.rot90(b, 2)[14:]])
        else:
            mix = np.maximum(np.rot90(a, rng.integers(1, 4)), a[:, ::-1])
        out.append(_enlarge(mix, rng))
    return digits28(out)


def mnist_on_canvas(x: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """MNIST digits enlarged (some hard-edged) and put back through the canvas path: digits as a drawing yields them."""
    return digits28([_enlarge(x[i], rng, sharpen=rng.random() < 0.5) for i in rng.integers(0, len(x), n)])


def _enlarge(img28: np.ndarray, rng: np.random.Generator, sharpen: bool = False) -> np.ndarray:
    size = int(rng.uniform(60, 200))
    big = np.asarray(Image.fromarray(np.ascontiguousarray(img28)).resize((size, size), Image.Resampling.BILINEAR))
    return np.where(big > 100, 255, 0).astype(np.uint8) if sharpen else big  # white on black


def make_bank(seed: int = 0, glyph_count: int = 3500, shape_count: int = 800, digit_count: int = 2500) -> Bank:
    """The machine's part of the material: fonts and strokes (MNIST-based material comes per run)."""
    rng = np.random.default_rng(seed)
    dejavu = [f for f in find_fonts("DejaVu") if glyphs(f)]
    negatives = [draw_strokes(pen_walk(rng), rng, wobble=0) for _ in range(shape_count)]
    negatives += [outlines(rng) for _ in range(shape_count)]
    if dejavu:
        for font in rng.choice(len(dejavu), glyph_count):
            chars = glyphs(dejavu[font])
            negatives.append(draw_glyph(chars[rng.integers(len(chars))], dejavu[font], rng))
    labels = rng.integers(0, 10, digit_count)
    drawn = [draw_strokes(strokes.digit(int(d), rng), rng) for d in labels[: digit_count * 3 // 5]]
    if dejavu:
        drawn += [draw_glyph(str(d), dejavu[rng.integers(len(dejavu))], rng) for d in labels[digit_count * 3 // 5 :]]
    heldout, kinds = heldout_images(np.random.default_rng(seed + 1))
    return Bank(digits28(negatives), digits28(drawn), digits28(heldout), np.array(kinds))


def heldout_images(rng: np.random.Generator, per_shape: int = 30, glyph_count: int = 600) -> tuple[list[np.ndarray], list[str]]:
    """Canvas images of the held-out family: hand-drawn SHAPES (with a shaky hand) and Liberation glyphs."""
    images, kinds = [], []
    for name, lines in strokes.SHAPES.items():
        for _ in range(per_shape):
            images.append(draw_strokes(lines, rng, wobble=0.01))
            kinds.append(name)
    liberation = find_fonts("Liberation")
    for font in rng.choice(len(liberation), glyph_count) if liberation else ():
        char = HELDOUT_GLYPHS[rng.integers(len(HELDOUT_GLYPHS))]
        images.append(draw_glyph(char, liberation[font], rng))
        kinds.append(f"{liberation[font].stem}: {char}")
    return images, kinds


def bank() -> Bank:
    """The bank, from the cache when this machine made it before (the file name covers the version and fonts)."""
    fonts = [f.name for f in find_fonts("DejaVu") + find_fonts("Liberation")]
    tag = hashlib.sha256(repr((VERSION, fonts)).encode()).hexdigest()[:12]
    path = cache_dir() / f"nondigits-{tag}.npz"
    try:
        check_regular(path, MAX_BANK)  # a FIFO or a device in its place is not waited on
        with np.load(path) as f:
            return Bank(f["negatives"], f["digits"], f["heldout"], f["heldout_kind"])
    except (OSError, KeyError, ValueError):
        pass
    made = make_bank()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    with os.fdopen(fd, "wb") as f:
        np.savez_compressed(f, **made.__dict__)
    os.replace(tmp, path)  # atomic: two processes making it at once both leave a whole file
    return made
