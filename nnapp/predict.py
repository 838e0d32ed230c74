"""Canvas or photo -> an MNIST-style 28×28 digit (every stage kept for display) -> class probabilities."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageFilter, UnidentifiedImageError
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
    """Each step of the preprocessing, ink = bright. The first three are uint8, for display."""

    ink: np.ndarray  # the whole image as ink intensity
    cropped: np.ndarray  # cut to the ink's bounding box
    boxed: np.ndarray  # scaled so the long side is 20 px, strokes at MNIST width
    digit: np.ndarray  # 28×28 float32 in [0, 1], centre of mass at the centre: what the model sees


def to_ink(image: np.ndarray) -> np.ndarray:
    """Ink intensity as uint8 (0 = background) for an RGBA, RGB or grey image of any colours.

    A drawing on a transparent canvas is its alpha channel. An opaque image is its distance in
    brightness from the background, taken as the median of the border, so black-on-white and
    white-on-black read the same.
    """
    a = np.ascontiguousarray(image, dtype=np.uint8)
    if a.ndim == 3 and a.shape[2] == 4 and np.median(_border(a[..., 3])) < 128:
        return np.ascontiguousarray(
            a[..., 3]
        )  # a transparent background: the strokes are where the alpha is, whatever their colour
    grey = np.asarray(Image.fromarray(a).convert("L")) if a.ndim == 3 else a  # PIL's RGB(A) -> L is ITU-R 601 luma
    background = np.uint8(np.median(_border(grey)))
    if background >= 128:  # dark ink on a light ground; uint8 all the way, no overflow
        return background - np.minimum(grey, background)
    return np.maximum(grey, background) - background


def _border(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary image: 2·area / boundary length (a long stroke has two edges)."""
    area = mask.sum()
    if not area:
        return 0.0
    p = np.pad(mask, 1)
    interior = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    boundary = max(area - interior.sum(), 1)
    return 2 * area / boundary


def preprocess(image: np.ndarray) -> Stages | None:
    """The MNIST treatment of a drawing; None when there is no ink."""
    ink = to_ink(image)
    peak = int(ink.max())
    if peak < MIN_INK * 255:
        return None
    mask = ink > peak * MIN_INK  # thresholds are relative to the strongest ink: faint pencil works too
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    cropped = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    img = Image.fromarray(cropped)
    # Work at 40-80 px: box-averaging down first keeps the later steps cheap on a big canvas.
    factor = max(1, max(img.size) // WORK)
    if factor > 1:
        img = img.reduce(factor)
    w, h = img.size
    # Bring the stroke to MNIST's width before shrinking: a thin pen on a big canvas would
    # otherwise shrink to a faint hairline the model has never seen.
    scale = BOX / max(h, w)
    grow = int(round((STROKE / scale - stroke_width(np.asarray(img) > peak // 2)) / 2))
    if grow > 0:
        img = Image.fromarray(np.pad(np.asarray(img), grow))
        for _ in range(grow):  # repeated 3×3 is the same square dilation as one big filter, and far faster
            img = img.filter(ImageFilter.MaxFilter(3))
        w, h = img.size
        scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    boxed = np.asarray(img.resize(size, Image.Resampling.LANCZOS))
    box = boxed.astype(np.float32) * (1.0 / max(int(boxed.max()), 1))
    new_h, new_w = box.shape
    mass = box.sum()
    cy = float(box.sum(1) @ np.arange(new_h)) / mass
    cx = float(box.sum(0) @ np.arange(new_w)) / mass
    top = int(np.clip(round(CENTRE - cy), 0, SIZE - new_h))
    left = int(np.clip(round(CENTRE - cx), 0, SIZE - new_w))
    digit = np.zeros((SIZE, SIZE), np.float32)
    digit[top : top + new_h, left : left + new_w] = box
    return Stages(ink=ink, cropped=cropped, boxed=boxed, digit=digit)


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
