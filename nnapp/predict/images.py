"""Canvas or photo -> an MNIST-style 28×28 image (every stage kept for display), or a small colour picture."""

from __future__ import annotations

import functools
import io
import math
import re
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin

BOX = 20  # MNIST fits each digit's bounding box into 20×20...
SIZE = 28  # ...then places it in 28×28 by its centre of mass
CENTRE = 14.0  # where MNIST's centres of mass sit (mean over the training set: 13.99, 14.00)
STROKE = 2.8  # typical MNIST stroke width in pixels, measured as 2·area/boundary of the ink
MIN_INK = 0.1  # an image whose strongest ink is below this is empty
MAX_UPLOAD_PIXELS = 24_000_000  # a 24-megapixel photo; the header says the size before any pixel is decoded
MAX_UPLOAD_BYTES = 64 << 20  # an image file read from disk (the browser's uploads are capped by Streamlit)
FORMATS = ("PNG", "JPEG", "MPO")  # MPO: a camera's multi-picture JPEG, read as its first picture
WORK_SIDE = 1024  # an upload's long side after decoding: preprocessing then costs milliseconds, not seconds
# A digit's PNG needs no text metadata: cap what its text chunks may decompress to (Pillow allows 1 and 64 MB).
PngImagePlugin.MAX_TEXT_CHUNK = 64 * 1024
PngImagePlugin.MAX_TEXT_MEMORY = 256 * 1024


class ImageError(ValueError):
    """An upload that is not a usable image; the message is for the user."""


WORK = 40  # long side (at least) at which strokes are measured and thickened: twice the box


@dataclass
class Stages:
    """Each step of the preprocessing, ink = bright. The first three are PIL images, for display."""

    grey: Image.Image  # the whole image in grey levels (or its alpha channel)
    lut: list[int]  # grey level -> ink
    cropped: Image.Image  # the ink, cut to its bounding box
    boxed: Image.Image  # scaled so the long side is 20 px, strokes at MNIST width
    digit: np.ndarray  # 28×28 float32 in [0, 1], centre of mass at the centre: what the model sees

    @property
    def ink(self) -> Image.Image:
        """The whole image as ink; made on demand, since only the display wants it."""
        return self.grey.point(self.lut)


def to_grey(image: np.ndarray) -> tuple[Image.Image, int]:
    """The image as one channel in which ink differs from the background, and the background's level.

    A drawing on a transparent canvas is its alpha channel (background 0), whatever the stroke
    colour. An opaque image is its luma, with the background taken as the median of the border,
    so black-on-white and white-on-black read the same.
    """
    a = np.ascontiguousarray(image, dtype=np.uint8)
    if a.ndim == 3 and a.shape[2] == 4 and _median(_border(a[..., 3])) < 128:
        return Image.fromarray(np.ascontiguousarray(a[..., 3])), 0
    grey = Image.fromarray(a).convert("L") if a.ndim == 3 else Image.fromarray(a)  # ITU-R 601 luma
    return grey, _median(_border(np.asarray(grey)))


@functools.lru_cache(maxsize=512)
def _ink_lut(background: int) -> list[int]:
    """Grey level -> ink: distance from the background on the ink's side of it."""
    if background >= 128:  # dark ink on a light ground
        return [max(background - v, 0) for v in range(256)]
    return [max(v - background, 0) for v in range(256)]


def _border(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def _median(a: np.ndarray) -> int:
    """int(np.median(a)), with a shortcut for the usual plain border."""
    lo, hi = int(a.min()), int(a.max())
    return lo if lo == hi else int(np.median(a))


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary image: 2·area / boundary length (a long stroke has two edges)."""
    area = np.count_nonzero(mask)
    if not area:
        return 0.0
    m = mask  # a pixel on the image's edge is always boundary, as if the image were padded with background
    interior = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    boundary = max(area - np.count_nonzero(interior), 1)
    return 2 * area / boundary


def dilate(ink: np.ndarray, radius: int) -> np.ndarray:
    """Grey-level dilation by a (2r+1)² square, the image growing by r pixels of background each side.

    The same as r passes of a 3×3 max filter; separable, so a running max along the rows, then the columns.
    """
    h, w = ink.shape
    r = radius
    padded = np.zeros((h + 4 * r, w + 4 * r), np.uint8)
    padded[2 * r : 2 * r + h, 2 * r : 2 * r + w] = ink
    across = padded[:, : w + 2 * r].copy()
    for k in range(1, 2 * r + 1):
        np.maximum(across, padded[:, k : k + w + 2 * r], out=across)
    out = across[: h + 2 * r].copy()
    for k in range(1, 2 * r + 1):
        np.maximum(out, across[k : k + h + 2 * r], out=out)
    return out


def preprocess(image: np.ndarray) -> Stages | None:
    """The MNIST treatment of a drawing; None when there is no ink."""
    grey, background = to_grey(image)
    g = np.asarray(grey)
    light_ground = background >= 128
    # Per-row and per-column extremes give the strongest ink and the bounding box in two passes.
    rows = g.min(1) if light_ground else g.max(1)
    cols = g.min(0) if light_ground else g.max(0)
    peak = background - int(rows.min()) if light_ground else int(rows.max()) - background
    if peak < MIN_INK * 255:
        return None
    # thresholds are relative to the strongest ink, so a faint pencil works too; as integers, so
    # that comparing uint8 pixels does not convert them to floats first
    level = peak * MIN_INK
    if light_ground:
        cut = math.ceil(background - level)
        rows, cols = np.flatnonzero(rows < cut), np.flatnonzero(cols < cut)
    else:
        cut = math.floor(background + level)
        rows, cols = np.flatnonzero(rows > cut), np.flatnonzero(cols > cut)
    lut = _ink_lut(background)
    cropped = grey.crop((int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1))
    if background:  # on a dark ground of 0 the grey levels already are the ink
        cropped = cropped.point(lut)
    # Work at 40-80 px: box-averaging down first keeps the later steps cheap on a big canvas.
    factor = max(1, max(cropped.size) // WORK)
    img = cropped.reduce(factor) if factor > 1 else cropped
    w, h = img.size
    # Bring the stroke to MNIST's width before shrinking: a thin pen on a big canvas would
    # otherwise shrink to a faint hairline the model has never seen.
    scale = BOX / max(h, w)
    ink = np.asarray(img)
    grow = int(round((STROKE / scale - stroke_width(ink > peak // 2)) / 2))
    if grow > 0:
        img = Image.fromarray(dilate(ink, grow))
        w, h = img.size
        scale = BOX / max(h, w)
    boxed = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    box = np.asarray(boxed, dtype=np.float32)
    box *= 1.0 / max(float(box.max()), 1.0)
    new_h, new_w = box.shape
    mass = box.sum()
    cy = float(box.sum(1) @ np.arange(new_h, dtype=np.float32)) / mass
    cx = float(box.sum(0) @ np.arange(new_w, dtype=np.float32)) / mass
    top = min(max(round(CENTRE - cy), 0), SIZE - new_h)
    left = min(max(round(CENTRE - cx), 0), SIZE - new_w)
    digit = np.zeros((SIZE, SIZE), np.float32)
    digit[top : top + new_h, left : left + new_w] = box
    return Stages(grey=grey, lut=lut, cropped=cropped, boxed=boxed, digit=digit)


COLOUR_SIZE = 32  # a colour data set's side, as CIFAR-10's


def colour_image(image: np.ndarray, size: int = COLOUR_SIZE) -> np.ndarray:
    """An RGB or RGBA image (or a grey one) as a colour data set holds it: transparent parts on white, the
    middle square of the image, scaled to size×size. uint8 size×size×3."""
    a = np.ascontiguousarray(image, dtype=np.uint8)
    img = Image.fromarray(a)
    if img.mode == "RGBA":
        ground = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(ground, img)
    img = img.convert("RGB")
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    if side != size:
        img = img.resize((size, size), Image.Resampling.BOX if side >= 2 * size else Image.Resampling.LANCZOS)
    return np.asarray(img)


def is_colour(image: np.ndarray, tolerance: int = 8) -> bool:
    """Whether an RGB(A) image has colour: its channels differ by more than `tolerance` somewhere it is opaque."""
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] < 3:
        return False
    rgb = a[..., :3].astype(np.int16)
    spread = rgb.max(2) - rgb.min(2)
    opaque = a[..., 3] > 0 if a.shape[2] == 4 else True
    return bool(np.any((spread > tolerance) & opaque))


def load_image(data: bytes) -> np.ndarray:
    """Decode an uploaded PNG or JPEG to RGBA, its long side at most WORK_SIDE; anything else raises ImageError.

    The size is checked from the header before a pixel is decoded, and every failure of the decoders
    (truncated files, bad checksums, metadata that would decompress to megabytes, odd modes) is an ImageError.
    A camera's multi-picture JPEG is read as its first picture.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageError(f"The file is {len(data) / (1 << 20):.0f} MiB; an image may be at most {MAX_UPLOAD_BYTES >> 20} MiB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is lower, and said
            return _decode(data)
    except ImageError:
        raise
    except Image.DecompressionBombError as err:  # Pillow's own limit, met before ours: still "too large"
        size = re.search(r"\((\d+) pixels\)", str(err))
        pixels = f"{int(size[1]):,} pixels" if size else "too many pixels"
        raise ImageError(f"The image has {pixels}; the limit is {MAX_UPLOAD_PIXELS / 1e6:.0f} megapixels.") from None
    except Exception as err:  # Pillow raises OSError, ValueError, SyntaxError, struct.error...
        raise ImageError("That file is not an image nnapp can read; upload a PNG or JPEG of a digit.") from err


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        if img.format not in FORMATS:
            raise ImageError(f"That is a {img.format or 'non-image'} file; upload a PNG or JPEG.")
        _check_pixels(img.width, img.height)
        img.draft("RGB", (WORK_SIDE, WORK_SIDE))  # JPEG: decode at a fraction of the size straight away
        img = ImageOps.exif_transpose(img)  # a phone photo the right way up (an MPO: its first picture)
        img.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BOX)  # the digit ends up 20 px tall anyway
        return np.asarray(_eight_bit(img).convert("RGBA"))


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_UPLOAD_PIXELS:
        raise ImageError(f"The image is {width:,}×{height:,} pixels; the limit is {MAX_UPLOAD_PIXELS / 1e6:.0f} megapixels.")


def _eight_bit(img: Image.Image) -> Image.Image:
    """16-bit and float grey images scaled to 8 bits (Pillow's own conversion clips them)."""
    if img.mode not in ("I", "I;16", "I;16B", "I;16L", "F"):
        return img
    a = np.asarray(img, dtype=np.float64)
    return Image.fromarray((a * (255 / max(float(a.max()), 1.0))).clip(0, 255).astype(np.uint8))
