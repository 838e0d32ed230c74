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


@dataclass
class Stages:
    """Each step of the preprocessing, as float arrays in [0, 1] with ink = 1."""

    ink: np.ndarray  # the whole image as ink intensity
    cropped: np.ndarray  # cut to the ink's bounding box
    boxed: np.ndarray  # scaled so the long side is 20 px, strokes at MNIST width
    digit: np.ndarray  # 28×28, centre of mass at the centre: what the model sees

    def as_uint8(self) -> np.ndarray:
        return np.round(self.digit * 255).astype(np.uint8)


def to_ink(image: np.ndarray) -> np.ndarray:
    """Ink intensity in [0, 1] for an RGBA, RGB or grey image of any colours.

    A drawing on a transparent canvas is its alpha channel. An opaque image is its distance in
    brightness from the background, taken as the median of the border, so black-on-white and
    white-on-black read the same.
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 4:
        alpha = a[..., 3].astype(np.float32) / 255
        if alpha.min() < 0.5:  # a transparent background: the strokes are where the alpha is, whatever their colour
            return alpha
        a = a[..., :3]
    grey = _luminance(a) if a.ndim == 3 else a.astype(np.float32) / 255
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    ink = np.abs(grey - np.median(border))
    peak = ink.max()
    return ink / peak if peak > MIN_INK else np.zeros_like(ink)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255


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
    if ink.max() < MIN_INK:
        return None
    rows = np.flatnonzero((ink > MIN_INK).any(1))
    cols = np.flatnonzero((ink > MIN_INK).any(0))
    cropped = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = cropped.shape
    scale = BOX / max(h, w)
    # Bring the stroke to MNIST's width before shrinking: a thin pen on a big canvas would
    # otherwise shrink to a faint hairline the model has never seen.
    width = stroke_width(cropped > 0.5)
    wanted = STROKE / scale
    grow = int(round((wanted - width) / 2))
    img = Image.fromarray(np.round(cropped * 255).astype(np.uint8))
    if grow > 0:
        pad = grow + 1
        img = Image.fromarray(np.pad(np.asarray(img), pad))
        for _ in range(grow):  # repeated 3×3 is the same square dilation as one big filter, and far faster
            img = img.filter(ImageFilter.MaxFilter(3))
        img = img.crop((pad - grow, pad - grow, pad + w + grow, pad + h + grow))
        h, w = h + 2 * grow, w + 2 * grow
        scale = BOX / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    boxed = np.asarray(img.resize((new_w, new_h), Image.Resampling.LANCZOS), dtype=np.float32) / 255
    boxed = np.clip(boxed / max(boxed.max(), 1e-6), 0, 1)
    digit = np.zeros((SIZE, SIZE), np.float32)
    ys, xs = np.mgrid[0:new_h, 0:new_w]
    mass = boxed.sum()
    cy, cx = (boxed * ys).sum() / mass, (boxed * xs).sum() / mass
    top = int(np.clip(round(CENTRE - cy), 0, SIZE - new_h))
    left = int(np.clip(round(CENTRE - cx), 0, SIZE - new_w))
    digit[top : top + new_h, left : left + new_w] = boxed
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
