"""Not a digit: a check on what a trained network computes, for every MNIST run, old and new.

The network's own activations (each conv block's output averaged over the four quadrants of the image,
each hidden layer, the logits) go into a small head, one hidden layer of 128, trained once per run to
tell digits (the run's training digits, and digits drawn on a canvas) from drawings that are not digits
(nnapp.nondigits: font glyphs, scribbles, outlines, cut and overlaid MNIST digits): outlier exposure,
after the fact, on frozen features, so runs trained before this existed get it too. The threshold is
the score that flags TARGET of the run's validation digits. benchmarks/bench.py section 7 compares this
with scores on the logits and Mahalanobis distances on the same data.

The statistics live beside the weights (ood/KEY.safetensors) with the weights' checksum, and are made
again when the weights change. `score_numpy` needs nothing but numpy, for scripts outside nnapp.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays
from torch import nn

from nnapp.engine.config import RunConfig
from nnapp.engine.data import load, split
from nnapp.engine.limits import CPU_EVAL_BATCH
from nnapp.engine.registry import ACTIVATIONS
from nnapp.predict import nondigits
from nnapp.predict.inference import Inference, for_inference, to_input
from nnapp.store.store import Store
from nnapp.store.weights import safetensors_header
from nnapp.system.compat import eager
from nnapp.system.files import atomic_write as _atomic_write
from nnapp.system.files import read_regular

VERSION = 1
TARGET = 0.005  # share of validation digits flagged: MNIST test then stays under 1% with room to spare
TRAIN_DIGITS = 10_000  # training digits the head sees (of the run's training split)
MNIST_MATERIAL = 1_200  # MNIST digits mixed into not-digits, and as many drawn large on a canvas
HIDDEN = 128
EPOCHS, BATCH = 20, 256
ARRAYS = ("w1", "b1", "w2", "b2")
MAX_STATS = 64 << 20  # bytes of a stored check: a head of 128 units on a few thousand features is far less


def available(config: RunConfig) -> bool:
    """Only digits have a not-a-digit check: its material is drawn for MNIST."""
    return config.dataset == "mnist"


@functools.cache
def _activation_types() -> tuple[type, ...]:
    return tuple(type(spec.build()) for _, spec in ACTIVATIONS.items())


def _is_activation(step) -> bool:
    # an Inference step is a layer's bound forward; an nn.Sequential's is the layer itself
    return isinstance(getattr(step, "__self__", step), _activation_types())


def run_with_features(steps, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, features): every activation's output (a conv map as its four quadrants' means) and the logits."""
    parts = []
    for step in steps:
        x = step(x)
        if _is_activation(step):
            parts.append(F.adaptive_avg_pool2d(x, 2).flatten(1) if x.ndim == 4 else x)
    parts.append(x)
    return x, torch.cat(parts, 1)


class WithFeatures(nn.Module):
    """A network that returns (logits, features) instead of logits: what an exported program needs for the check."""

    def __init__(self, model: nn.Sequential):
        super().__init__()
        self.model = model.eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return run_with_features(list(self.model), x)


@torch.inference_mode()
def features(model: Inference, images: np.ndarray, batch: int = CPU_EVAL_BATCH) -> np.ndarray:
    """Features (float32, one row per image) of uint8 N×28×28 images."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))
    out = [run_with_features(model.steps, x[i : i + batch].unsqueeze(1).float() / 255)[1] for i in range(0, len(x), batch)]
    return torch.cat(out).numpy()


def score_numpy(features: np.ndarray, stats: dict) -> np.ndarray:
    """Not-a-digit score of each row of `features` (above stats["threshold"]: not a digit).

    Numpy alone: copy it into a script as it is. `stats` holds w1, b1, w2, b2 as arrays or lists.
    """
    w1, b1, w2, b2 = (np.asarray(stats[k], np.float32) for k in ARRAYS)
    return np.maximum(np.asarray(features, np.float32) @ w1 + b1, 0) @ w2 + b2


def fit_head(digits: np.ndarray, others: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Train the head: digits score low, the others high (weighted to count alike); standardisation folded into w1."""
    x = torch.from_numpy(np.concatenate([digits, others]))
    y = torch.cat([torch.zeros(len(digits)), torch.ones(len(others))])
    weight = torch.where(y == 1, len(digits) / max(len(others), 1), 1.0)
    mean, scale = x.mean(0), x.std(0) + 1e-6
    x = (x - mean) / scale
    # The caller's random state is left as it was. One thread: steps this small only wait for a second one.
    with torch.random.fork_rng(), _threads(1):
        torch.manual_seed(seed)
        head = nn.Sequential(nn.Linear(x.shape[1], HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 1))
        optimizer = eager(torch.optim.AdamW)(head.parameters(), 3e-3, weight_decay=1e-4)
        for _ in range(EPOCHS):
            for idx in torch.randperm(len(x)).split(BATCH):
                loss = F.binary_cross_entropy_with_logits(head(x[idx])[:, 0], y[idx], weight=weight[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    w1, b1, w2, b2 = (p.detach() for p in head.parameters())
    return {
        "w1": (w1 / scale).T.contiguous().numpy(),
        "b1": (b1 - (w1 / scale) @ mean).numpy(),
        "w2": w2[0].numpy(),
        "b2": b2.numpy(),
    }


@contextlib.contextmanager
def _threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def compute(model: nn.Sequential, config: RunConfig) -> dict:
    """The check for a trained network: the head, its threshold, and how often it flags each kind of image."""
    started = time.perf_counter()
    data = split(load(config.dataset), config.val_fraction, config.seed, config.train_subset)
    net, rng, material = for_inference(model), np.random.default_rng(config.seed), nondigits.bank()
    train_x = data.train_x.numpy()
    picked = train_x[rng.choice(len(train_x), min(TRAIN_DIGITS, len(train_x)), replace=False)]
    digits = [picked, material.digits, nondigits.mnist_on_canvas(train_x, rng, MNIST_MATERIAL)]
    others = [material.negatives, nondigits.mnist_mixes(train_x, rng, MNIST_MATERIAL)]
    stats = fit_head(np.concatenate([features(net, d) for d in digits]), np.concatenate([features(net, o) for o in others]))
    val = score_numpy(features(net, data.val_x.numpy()), stats)
    stats["threshold"] = float(np.quantile(val, 1 - TARGET))
    flagged = lambda images: float((score_numpy(features(net, images), stats) > stats["threshold"]).mean())  # noqa: E731
    stats["rates"] = {
        "validation": float((val > stats["threshold"]).mean()),
        "test": flagged(data.test_x.numpy()),
        "heldout": flagged(material.heldout),
        "heldout_count": len(material.heldout),
    }
    stats["seconds"] = time.perf_counter() - started
    return stats


# --- stored with the run ----------------------------------------------------------------------------


def path(store: Store, key: str) -> Path:
    return store.home / "ood" / f"{key}.safetensors"


def load_stats(store: Store, key: str) -> dict | None:
    """The stored check of a run, or None when there is none for its current weights."""
    run, file = store.get(key), path(store, key)
    if run is None or not run.has_weights() or not file.exists():
        return None
    try:
        blob = read_regular(file, MAX_STATS)  # a FIFO or a device in its place is never waited on
        meta = (safetensors_header(blob) or {}).get("__metadata__") or {}
        if meta.get("version") != str(VERSION) or meta.get("weights_sha256") != run.weights_sha256:
            return None  # made for other weights, or by another version: made again
        stats = load_arrays(blob)
        return {
            **stats,
            "threshold": float(meta["threshold"]),
            "rates": json.loads(meta["rates"]),
            "seconds": float(meta["seconds"]),
        }
    except (OSError, ValueError, KeyError, TypeError, SafetensorError):
        return None  # unreadable: made again


def save_stats(store: Store, key: str, stats: dict) -> None:
    run = store.get(key)
    meta = {
        "version": str(VERSION),
        "weights_sha256": run.weights_sha256 or "",
        "threshold": repr(stats["threshold"]),
        "rates": json.dumps(stats["rates"]),
        "seconds": repr(stats["seconds"]),
    }
    path(store, key).parent.mkdir(exist_ok=True)
    _atomic_write(path(store, key), save_arrays({k: np.ascontiguousarray(stats[k]) for k in ARRAYS}, metadata=meta))


def ensure(store: Store, key: str) -> dict | None:
    """The run's check, made and stored now if it has none (a few seconds); None where there can be none."""
    run = store.get(key)
    if run is None or not run.has_weights() or not available(run.config):
        return None
    stats = load_stats(store, key)
    if stats is None:
        model, config = store.load_model(key)
        stats = compute(model, config)
        if not store.readonly and store.get(key).weights_sha256 == run.weights_sha256:  # not retrained meanwhile
            try:
                save_stats(store, key, stats)
            except OSError:  # a read-only folder, a full disk: the check is used from memory, made again next time
                pass
    return stats


def check_task(payload: dict, store: Store, handle) -> dict:
    """The "not_a_digit" task (nnapp.tasks): make and store a run's check in a job process."""
    stats = ensure(store, payload["key"])
    return {"threshold": stats["threshold"]} if stats else {}


def task_key(run) -> str:
    """One task per run and weights: a retrain's new weights get a check of their own."""
    return f"not_a_digit:{run.key}:{run.weights_sha256[:12]}"


def bundle_entry(store: Store, key: str) -> dict:
    """Everything an exported bundle needs for the check, as JSON: with the program's (logits, features) and
    score_numpy, score > threshold means "not a digit". Made now if the run has none yet."""
    stats = ensure(store, key)
    if stats is None:
        return {}
    return {
        "version": VERSION,
        "features": "each activation's output (conv maps as their 2x2 adaptive average pool, flattened), then the logits",
        "score": "max(features @ w1 + b1, 0) @ w2 + b2",
        **{k: np.asarray(stats[k]).tolist() for k in ARRAYS},
        "threshold": stats["threshold"],
        "rates": stats["rates"],
    }


@dataclass(frozen=True)
class Verdict:
    """What the model makes of one drawing: its probabilities, and whether it looks like a digit at all."""

    probabilities: np.ndarray
    score: float | None = None  # None: the run has no check (yet)
    threshold: float | None = None

    @property
    def digit(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def is_digit(self) -> bool:
        return self.score is None or self.score <= self.threshold


@torch.inference_mode()
def judge(model: Inference, digit: np.ndarray, stats: dict | None) -> Verdict:
    """The canvas path's last step: probabilities and the not-a-digit score from one pass of the network."""
    logits, feats = run_with_features(model.steps, to_input(digit))
    probs = logits.softmax(1)[0].numpy()
    if stats is None:
        return Verdict(probs)
    return Verdict(probs, float(score_numpy(feats.numpy(), stats)[0]), stats["threshold"])
