"""Canvas or photo -> an MNIST-style 28×28 digit (every stage kept for display) -> class probabilities."""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError
from torch import nn

BOX = 20  # MNIST fits each digit's bounding box into 20×20...
SIZE = 28  # ...then places it in 28×28 by its centre of mass
CENTRE = 14.0  # where MNIST's centres of mass sit (mean over the training set: 13.99, 14.00)
STROKE = 2.8  # typical MNIST stroke width in pixels, measured as 2·area/boundary of the ink
MIN_INK = 0.1  # an image whose strongest ink is below this is empty
MAX_UPLOAD_PIXELS = 4096 * 4096


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
    if a.ndim == 3 and a.shape[2] == 4 and np.median(_border(a[..., 3])) < 128:
        return Image.fromarray(np.ascontiguousarray(a[..., 3])), 0
    grey = Image.fromarray(a).convert("L") if a.ndim == 3 else Image.fromarray(a)  # ITU-R 601 luma
    return grey, int(np.median(_border(np.asarray(grey))))


@functools.lru_cache(maxsize=512)
def _ink_lut(background: int) -> list[int]:
    """Grey level -> ink: distance from the background on the ink's side of it."""
    if background >= 128:  # dark ink on a light ground
        return [max(background - v, 0) for v in range(256)]
    return [max(v - background, 0) for v in range(256)]


def _border(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary image: 2·area / boundary length (a long stroke has two edges)."""
    area = mask.sum()
    if not area:
        return 0.0
    m = mask  # a pixel on the image's edge is always boundary, as if the image were padded with background
    interior = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    boundary = max(area - interior.sum(), 1)
    return 2 * area / boundary


def preprocess(image: np.ndarray) -> Stages | None:
    """The MNIST treatment of a drawing; None when there is no ink."""
    grey, background = to_grey(image)
    g = np.asarray(grey)
    light_ground = background >= 128
    peak = background - int(g.min()) if light_ground else int(g.max()) - background
    if peak < MIN_INK * 255:
        return None
    # thresholds are relative to the strongest ink, so a faint pencil works too
    level = peak * MIN_INK
    mask = g < background - level if light_ground else g > background + level
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    lut = _ink_lut(background)
    cropped = grey.crop((int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)).point(lut)
    # Work at 40-80 px: box-averaging down first keeps the later steps cheap on a big canvas.
    factor = max(1, max(cropped.size) // WORK)
    img = cropped.reduce(factor) if factor > 1 else cropped
    w, h = img.size
    # Bring the stroke to MNIST's width before shrinking: a thin pen on a big canvas would
    # otherwise shrink to a faint hairline the model has never seen.
    scale = BOX / max(h, w)
    grow = int(round((STROKE / scale - stroke_width(np.asarray(img) > peak // 2)) / 2))
    if grow > 0:
        img = ImageOps.expand(img, border=grow, fill=0)
        for _ in range(grow):  # repeated 3×3 is the same square dilation as one big filter, and far faster
            img = img.filter(ImageFilter.MaxFilter(3))
        w, h = img.size
        scale = BOX / max(h, w)
    boxed = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    box = np.asarray(boxed, dtype=np.float32)
    box = box * (1.0 / max(float(box.max()), 1.0))
    new_h, new_w = box.shape
    mass = box.sum()
    cy = float(box.sum(1) @ np.arange(new_h)) / mass
    cx = float(box.sum(0) @ np.arange(new_w)) / mass
    top = int(np.clip(round(CENTRE - cy), 0, SIZE - new_h))
    left = int(np.clip(round(CENTRE - cx), 0, SIZE - new_w))
    digit = np.zeros((SIZE, SIZE), np.float32)
    digit[top : top + new_h, left : left + new_w] = box
    return Stages(grey=grey, lut=lut, cropped=cropped, boxed=boxed, digit=digit)


def load_image(data: bytes) -> np.ndarray:
    """Decode an uploaded PNG or JPEG to RGBA; anything else raises ImageError."""
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_UPLOAD_PIXELS:
            raise ImageError(f"The image is {img.width}×{img.height} pixels; the limit is 4096×4096.")
        if img.format not in ("PNG", "JPEG"):
            raise ImageError(f"That is a {img.format} image; upload a PNG or JPEG.")
        return np.asarray(img.convert("RGBA"))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as err:
        raise ImageError("That file is not an image nnapp can read; upload a PNG or JPEG of a digit.") from err


def to_input(digit: np.ndarray) -> torch.Tensor:
    """A 28×28 digit in [0, 1] (float or uint8) as the model's input batch of one."""
    x = torch.as_tensor(digit, dtype=torch.float32)
    if x.max() > 1:
        x = x / 255
    return x.reshape(1, 1, SIZE, SIZE)


def for_inference(model: nn.Module) -> nn.Module:
    """Eval mode, and channels_last for a CNN: about 1.6x faster for one digit on a CPU."""
    model.eval()
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model.to(memory_format=torch.channels_last)
    return model


@torch.inference_mode()
def probabilities(model: nn.Module, digit: np.ndarray) -> np.ndarray:
    """Class probabilities for one 28×28 digit."""
    return model(to_input(digit)).softmax(1)[0].numpy()


def saliency(model: nn.Module, digit: np.ndarray, target: int | None = None) -> np.ndarray:
    """|gradient × input| of the target class's logit (default: the predicted one), scaled to [0, 1].

    Pixels that are ink and that move the score most light up.
    """
    x = to_input(digit).requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        cls = int(logits.argmax(1)) if target is None else target
        logits[0, cls].backward()
    heat = (x.grad * x).abs()[0, 0] + 0.25 * x.grad.abs()[0, 0]  # background pixels that matter show faintly
    heat = heat.detach().numpy()
    return heat / heat.max() if heat.max() > 0 else heat


def predict(model: nn.Module, image: np.ndarray) -> tuple[Stages, np.ndarray] | None:
    """The canvas path: raw image -> stages and probabilities; None for an empty drawing."""
    stages = preprocess(image)
    if stages is None:
        return None
    return stages, probabilities(model, stages.digit)
