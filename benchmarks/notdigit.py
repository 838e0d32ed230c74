"""Section 12 of bench.py: the not-a-digit check against the other families it was chosen over, and its costs."""

from __future__ import annotations

import tempfile
import time

import numpy as np
import torch

from nnapp.engine.config import RunConfig
from nnapp.engine.data import load, split
from nnapp.engine.presets import PRESETS
from nnapp.jobs.runs import train_or_load
from nnapp.predict.images import preprocess
from nnapp.predict.inference import for_inference, predict
from nnapp.store.store import Store

# --- 12. not a digit ---------------------------------------------------------------------------------


def bench_not_a_digit(table, presets: list[str], store: Store | None, repeats: int = 300) -> None:
    """The not-a-digit check against the other families, on the same data; what it costs."""
    from scipy.special import logsumexp

    from nnapp.predict import nondigits, ood
    from tests.digits import render
    from tests.nondigits import nondigits as test_nondigits

    store = store or Store(tempfile.mkdtemp(prefix="nnapp-bench-runs-"))
    material = nondigits.bank()
    as_uint8 = lambda images: np.stack([np.round(preprocess(i).digit * 255).astype(np.uint8) for i in images])  # noqa: E731
    sets = {
        "held-out non-digits": material.heldout,
        "tests' non-digits": as_uint8([image for _, image in test_nondigits()]),
        "drawn digits": as_uint8(
            [
                render(d, box=(20 + 9 * k, 15 + 7 * k, 80 + 20 * k, 110 + 20 * k), width=w)
                for d in range(10)
                for k in range(6)
                for w in (6, 18, 30)
            ]
        ),
    }
    rows, costs = [], []
    for name in presets:
        run = train_or_load(PRESETS[name], store)
        model, config = store.load_model(run.key)
        started = time.perf_counter()
        stats = ood.compute(model, config)
        check_s = time.perf_counter() - started
        data = split(load("mnist"), config.val_fraction, config.seed, config.train_subset)
        net = for_inference(model)
        feats = {
            k: ood.features(net, v)
            for k, v in {"validation": data.val_x.numpy(), "MNIST test": data.test_x.numpy(), **sets}.items()
        }
        train_feats = ood.features(net, data.train_x[:10_000].numpy())
        families = _families(feats, train_feats, data.train_y[:10_000].numpy(), stats, _last_tap_width(config), logsumexp)
        for family, score in families.items():
            threshold = np.quantile(score("validation"), 1 - ood.TARGET)
            rows.append([name, family, *[float((score(k) > threshold).mean()) for k in ["MNIST test", *sets]]])
        costs.append([name, run.train_seconds, check_s, check_s / run.train_seconds, *_canvas_costs(net, stats, repeats)])
    table(
        f"12a. Not a digit: share flagged, threshold at {ood.TARGET:.1%} of validation digits (same data for every family)",
        ["preset", "family", "MNIST test", *sets],
        rows,
    )
    table(
        "12b. What the check costs: made once per run after training (training itself is unchanged); canvas path p50, one thread (ms)",
        ["preset", "training s", "check s", "check / training", "canvas path p50", "with the check p50", "extra ms"],
        costs,
    )


def _last_tap_width(config: RunConfig) -> int:
    """Width of the last activation's features: the penultimate layer (a conv map counts its four quadrants)."""
    from nnapp.engine.arch import plan

    last = [layer for layer in plan(config) if layer.kind == "activation"][-1]
    return last.shape[0] * 4 if len(last.shape) == 3 else last.shape[0]


def _families(feats, train_feats, train_y, stats, last_width: int, logsumexp) -> dict:
    """Scores (higher: less like a digit) of each family, from the same features."""
    from nnapp.predict import ood

    logits = lambda k: feats[k][:, -10:]  # noqa: E731  the features end with the logits
    width = stats["w1"].shape[0]
    penultimate = slice(width - 10 - last_width, width - 10)
    maha = _mahalanobis(train_feats[:, penultimate], train_y)
    maha_all = _mahalanobis(train_feats, train_y)
    return {
        "max softmax probability": lambda k: -np.exp(logits(k).max(1) - logsumexp(logits(k), 1)),
        "max logit": lambda k: -logits(k).max(1),
        "energy": lambda k: -logsumexp(logits(k), 1),
        "Mahalanobis, penultimate layer": lambda k: maha(feats[k][:, penultimate]),
        "Mahalanobis, all the check's features": lambda k: maha_all(feats[k]),
        "outlier-exposure head (chosen)": lambda k: ood.score_numpy(feats[k], stats),
    }


def _mahalanobis(train: np.ndarray, labels: np.ndarray, shrink: float = 1e-3):
    """Distance to the nearest class mean, under the training features' shared covariance (Lee et al. 2018)."""
    train = train.astype(np.float64)
    means = np.stack([train[labels == c].mean(0) for c in range(10)])
    centred = train - means[labels]
    cov = centred.T @ centred / len(train)
    precision = np.linalg.inv(cov + shrink * np.trace(cov) / len(cov) * np.eye(len(cov)))
    projected = means @ precision
    offsets = (projected * means).sum(1)

    def score(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64)
        return ((x @ precision) * x).sum(1) - (2 * x @ projected.T - offsets).max(1)

    return score


def _canvas_costs(net, stats, repeats: int) -> list[float]:
    """p50 of the canvas path without and with the check, interleaved, one torch thread as in the app."""
    from nnapp.predict import ood
    from tests.digits import render

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    canvases = [render(d, box=(40 + 5 * d, 30, 150, 200), width=18) for d in range(10)]
    plain, checked = [], []
    for i in range(repeats + 20):
        canvas = canvases[i % 10]
        start = time.perf_counter()
        predict(net, canvas)
        middle = time.perf_counter()
        ood.judge(net, preprocess(canvas).digit, stats)
        end = time.perf_counter()
        if i >= 20:
            plain.append(middle - start)
            checked.append(end - middle)
    torch.set_num_threads(threads)
    p50 = lambda xs: float(np.median(xs)) * 1000  # noqa: E731
    return [p50(plain), p50(checked), p50(checked) - p50(plain)]
