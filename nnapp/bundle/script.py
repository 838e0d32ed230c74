"""Name the class of image files with the model of this bundle (written by nnapp's export).

    python predict.py digit.png [another.jpg ...]

Needs Python 3.10+ with torch, numpy and Pillow; not nnapp. nnapp copies this file into every bundle as
predict.py and never imports it. Each step is a function of its own (load the model, read an image, make
it an MNIST-style digit or a small colour picture, predict, report), so a step can be added without
touching the others.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
BOX, SIZE = 20, 28  # MNIST fits a digit's bounding box into 20×20, then centres its mass in 28×28


def load_model(folder: Path = HERE) -> torch.nn.Module:
    """The network as saved by torch.export (model.pt2): (N, channels, size, size) pixels in [0, 1] -> (N, classes) logits."""
    return torch.export.load(str(folder / "model.pt2")).module()


def class_names(folder: Path = HERE) -> list[str]:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["classes"]


def input_form(folder: Path = HERE) -> dict:
    """What the network reads: a grey digit (as MNIST's), or a colour picture of size×size (a bundle from
    before colour networks says nothing: a digit)."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return manifest.get("input", {"channels": 1, "size": SIZE, "form": "digit"})


def to_picture(path: Path, size: int) -> np.ndarray:
    """A colour image as the network reads it: transparent parts on white, its middle square scaled to
    size×size, channels first, in [0, 1]."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img).convert("RGBA")
    ground = Image.new("RGBA", img.size, (255, 255, 255, 255))
    img = Image.alpha_composite(ground, img).convert("RGB")
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255


def load_check(folder: Path = HERE) -> dict | None:
    """The run's not-a-digit check (not-a-digit.json), where the bundle has one."""
    path = folder / "not-a-digit.json"
    return json.loads(path.read_text()) if path.exists() else None


def not_digit_score(features: np.ndarray, check: dict) -> float:
    """Above check["threshold"]: not a digit. The same arithmetic as nnapp.ood.score_numpy."""
    w1, b1, w2, b2 = (np.asarray(check[k], np.float32) for k in ("w1", "b1", "w2", "b2"))
    return float((np.maximum(np.asarray(features, np.float32) @ w1 + b1, 0) @ w2 + b2)[0])


def read_image(path: Path) -> np.ndarray:
    """The image as ink in [0, 1] (bright ink on a dark ground), whatever its colours or orientation."""
    with Image.open(path) as img:
        grey = np.asarray(ImageOps.exif_transpose(img).convert("L"), dtype=np.float32) / 255
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return 1 - grey if np.median(border) > 0.5 else grey  # dark ink on a light ground: invert


def to_digit(ink: np.ndarray) -> np.ndarray | None:
    """Crop to the ink, fit into 20×20, place its centre of mass at the middle of 28×28; None without ink."""
    if ink.max() < 0.1:
        return None
    rows, cols = np.flatnonzero((ink > 0.1 * ink.max()).any(1)), np.flatnonzero((ink > 0.1 * ink.max()).any(0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = BOX / max(crop.shape)
    width, height = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
    box = np.asarray(Image.fromarray(crop).resize((width, height), Image.Resampling.LANCZOS)).clip(0, None)
    box /= max(float(box.max()), 1e-6)
    ys, xs = np.indices(box.shape)
    mass = box.sum()
    top = min(max(round(SIZE / 2 - (box * ys).sum() / mass), 0), SIZE - height)
    left = min(max(round(SIZE / 2 - (box * xs).sum() / mass), 0), SIZE - width)
    digit = np.zeros((SIZE, SIZE), np.float32)
    digit[top : top + height, left : left + width] = box
    return digit


@torch.inference_mode()
def predict(model: torch.nn.Module, digit: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Class probabilities for one image (a 28×28 digit, or a channels-first picture), and the features the
    not-a-digit check reads (if the program returns them)."""
    out = model(torch.from_numpy(np.ascontiguousarray(digit)).reshape(1, -1, *digit.shape[-2:]))
    logits, features = out if isinstance(out, tuple) else (out, None)
    return logits.softmax(1)[0].numpy(), None if features is None else features.numpy()


def report(path: str, names: list[str], probs: np.ndarray | None, score: float | None = None, threshold: float = 0.0) -> str:
    if probs is None:
        return f"{path}: no ink found"
    best = int(np.argmax(probs))
    if score is None:
        return f"{path}: {names[best]} ({probs[best]:.1%})"
    check = f"not-a-digit score {score:.2f}, threshold {threshold:.2f}"
    if score > threshold:
        return f"{path}: not a digit (best guess {names[best]}, {probs[best]:.1%}; {check})"
    return f"{path}: {names[best]} ({probs[best]:.1%}; {check})"


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python predict.py IMAGE [IMAGE ...]", file=sys.stderr)
        return 2
    model, names, check, form = load_model(), class_names(), load_check(), input_form()
    failed = 0
    for path in argv:
        try:
            if form["form"] == "picture":
                digit = to_picture(Path(path), form["size"])
            else:
                digit = to_digit(read_image(Path(path)))
        except (OSError, ValueError) as err:  # missing, unreadable or not an image
            print(f"{path}: cannot read it ({err})", file=sys.stderr)
            failed = 1
            continue
        if digit is None:
            print(report(path, names, None))
            continue
        probs, features = predict(model, digit)
        score = not_digit_score(features, check) if check and features is not None else None
        print(report(path, names, probs, score, check["threshold"] if check else 0.0))
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
