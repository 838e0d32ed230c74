"""One image made into an example of a data set, the way the Playground makes what it is shown: a grey data
set's through the canvas's preprocessing (ink cropped, boxed and centred as MNIST's digits), a colour one's
as a small picture. What is trained is then what will be tested."""

from __future__ import annotations

import numpy as np

from nnapp.engine import datasets
from nnapp.predict.images import colour_image, preprocess


def as_example(image: np.ndarray, channels: int) -> np.ndarray | None:
    """An RGB(A) or grey image as an example in the store's layout (uint8 28×28, or 3×32×32); None for a
    grey one without ink. An image already in the network's form (28×28 bright ink on a dark ground, or
    32×32 colour: an exported data set, MNIST's own files) is taken as it is, so an export reads back unchanged."""
    if channels == 3:
        return np.ascontiguousarray(colour_image(image, datasets.SHAPES[3]).transpose(2, 0, 1))
    ready = ready_digit(image)
    if ready is not None:
        return ready
    stages = preprocess(image)
    return None if stages is None else np.round(stages.digit * 255).astype(np.uint8)


def ready_digit(image: np.ndarray) -> np.ndarray | None:
    """A 28×28 grey image on a dark border as it is (ink bright), or None."""
    a = np.asarray(image)
    if a.shape[:2] != (28, 28):
        return None
    if a.ndim == 3:
        if a.shape[2] == 4 and a[..., 3].min() < 255:  # transparent parts: a drawing, not a digit image
            return None
        if int(np.ptp(a[..., :3].astype(np.int16), axis=2).max()) > 8:  # colour
            return None
        a = a[..., 0]
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    return np.ascontiguousarray(a, np.uint8) if np.median(border) < 32 and a.max() >= 64 else None


def model_input(image: np.ndarray, channels: int) -> np.ndarray | None:
    """What a network of a data set with `channels` reads from an image: float in [0, 1], 28×28 grey or
    32×32×3 colour (for display and nnapp.predict.inference.to_input); None for a grey one without ink."""
    example = as_example(image, channels)
    if example is None:
        return None
    pixels = example.astype(np.float32) / 255
    return pixels.transpose(1, 2, 0) if channels == 3 else pixels
