"""Sections 7-9 of benchmarks/bench.py: what the views of the network's inside cost.

7. Histogram recording during training (every run does it) and the unsmoothed train loss, against the
   fast preset's training time: the recorder's and the loss's own time in every run, and whole fits with
   and without the recorder, interleaved.
8. The embedding projector on the 10,000 MNIST test digits: features and PCA as the Results page computes
   them (one torch thread, as in the app), t-SNE as its background job computes it (every thread).
9. The Playground's activations for one digit: the hooked forward pass, and the figures drawn from it.
"""

from __future__ import annotations

import statistics
import tempfile
import time

import numpy as np
import torch

from nnapp.charts import inside as charts_inside
from nnapp.engine.models import build_model
from nnapp.engine.presets import PRESETS
from nnapp.engine.steplog import StepLog
from nnapp.engine.train import fit
from nnapp.inside.activations import layer_outputs
from nnapp.inside.projector import features, pca, tsne
from nnapp.jobs.runs import train_or_load
from nnapp.predict.images import preprocess
from nnapp.store.recorder import HistogramRecorder
from nnapp.store.store import Store


class TimedRecorder(HistogramRecorder):
    """The recorder, with the time spent in it added up."""

    seconds = 0.0

    def on_fit_start(self, loop) -> None:
        start = time.perf_counter()
        super().on_fit_start(loop)
        self.seconds += time.perf_counter() - start

    def on_epoch_end(self, loop, row: dict) -> str | None:
        start = time.perf_counter()
        super().on_epoch_end(loop, row)
        self.seconds += time.perf_counter() - start
        return None


def bench_histograms(table, device, data, repeats: int) -> None:
    config = PRESETS["fast"]
    store = Store(tempfile.mkdtemp(prefix="nnapp-bench-hist-"))
    spent = {"unsmoothed": 0.0}
    plain_unsmoothed = StepLog._unsmoothed

    def timed_unsmoothed(self, logits, labels):
        start = time.perf_counter()
        out = plain_unsmoothed(self, logits, labels)
        spent["unsmoothed"] += time.perf_counter() - start
        return out

    StepLog._unsmoothed = timed_unsmoothed
    own, loss_share, pairs = [], [], []
    try:
        for i in range(repeats + 2):  # interleaved, so that a slow spell of a shared machine hits both sides alike
            recorder = TimedRecorder(store, f"bench-{i}")
            spent["unsmoothed"] = 0.0
            start = time.perf_counter()
            recorded = fit(config, data, device, callbacks=[recorder])
            with_recorder = time.perf_counter() - start
            own.append(recorder.seconds / recorded.train_seconds)
            loss_share.append(spent["unsmoothed"] / recorded.train_seconds)
            start = time.perf_counter()
            fit(config, data, device)
            pairs.append(with_recorder / (time.perf_counter() - start))
    finally:
        StepLog._unsmoothed = plain_unsmoothed
    table(
        "13. What the fast preset's training pays for histograms and the unsmoothed train loss",
        ["measure", "median", "spread"],
        [
            ["histogram recording (epoch 0 and 1): its own time / training time", _pct(own), _spread(own)],
            ["unsmoothed loss of each step: its own time / training time", _pct(loss_share), _spread(loss_share)],
            [
                "whole fit() with the recorder / without (interleaved pairs)",
                f"{statistics.median(pairs):.3f}×",
                _spread(pairs, "×"),
            ],
        ],
    )


def bench_projector(table) -> None:
    store = Store(tempfile.mkdtemp(prefix="nnapp-bench-tsne-"))
    run = train_or_load(PRESETS["fast"], store)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the app's process predicts with one thread
    start = time.perf_counter()
    feats, labels, _ = features(store, run.key)
    t_features = time.perf_counter() - start
    start = time.perf_counter()
    space = pca(feats)
    t_pca = time.perf_counter() - start
    torch.set_num_threads(threads)
    start = time.perf_counter()
    coords = tsne(space["coords"])
    t_tsne = time.perf_counter() - start
    table(
        f"14. Embedding projector, 10,000 MNIST test digits (fast preset, {feats.shape[1]} features)",
        ["step", "seconds", "same-class nearest neighbour on the map"],
        [
            ["penultimate features, one torch thread (Results page)", t_features, "-"],
            [
                "PCA to 50 components, one thread (Results page)",
                t_pca,
                f"{_neighbour_agreement(space['coords'][:, :2], labels):.1%} (first two)",
            ],
            [
                f"t-SNE, scikit-learn Barnes-Hut, {threads} threads (background job)",
                t_tsne,
                f"{_neighbour_agreement(coords, labels):.1%}",
            ],
        ],
    )


def _neighbour_agreement(coords: np.ndarray, labels: np.ndarray, sample: int = 2000) -> float:
    """Share of (a sample of) points whose nearest other point on the map has their label."""
    idx = np.random.default_rng(0).choice(len(coords), min(sample, len(coords)), replace=False)
    d = ((coords[idx, None, :] - coords[None, :, :]) ** 2).sum(2)
    d[np.arange(len(idx)), idx] = np.inf
    return float((labels[d.argmin(1)] == labels[idx]).mean())


def bench_activations(table, repeats: int = 200) -> None:
    from tests.digits import render

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    digit = preprocess(render(3, box=(60, 40, 150, 200), width=18)).digit
    rows = []
    for name in ("fast", "default", "best"):
        torch.manual_seed(0)
        config = PRESETS[name]
        model = build_model(config).eval()
        passes, figures = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            _, found = layer_outputs(model, config, digit)
            passes.append(time.perf_counter() - start)
            start = time.perf_counter()
            for probe, values in found:
                if probe.kind == "conv":
                    charts_inside.tiles(values, probe.name)
                else:
                    charts_inside.units(values, probe.name)
            figures.append(time.perf_counter() - start)
        rows.append([name, _ms(passes, 50), _ms(passes, 99), _ms(figures, 50), _ms(figures, 99)])
    torch.set_num_threads(threads)
    table(
        "15. Playground activations for one digit, one torch thread (ms)",
        ["preset", "hooked forward p50", "p99", "figures p50", "p99"],
        rows,
    )


def _ms(xs: list[float], q: int) -> float:
    return float(np.percentile(xs, q)) * 1000


def _pct(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2%}"


def _spread(xs: list[float], unit: str = "%") -> str:
    if unit == "%":
        return f"{min(xs):.2%} – {max(xs):.2%}"
    return f"{min(xs):.3f} – {max(xs):.3f}{unit}"
