"""The embedding projector: the test digits as the network's penultimate layer sees them, in 2-D.

PCA is quick enough to compute where it is shown. t-SNE of 10,000 digits takes a while, so it is a
background task ("tsne" in nnapp.tasks.TASKS) computed once per run's weights and kept in the store;
it reports progress through the task handle and stops when asked. Both start from the same 50
principal components of the features, so the user's drawings can be placed in either map: exactly in
PCA, and in t-SNE (which has no transform for new points) at the mean of their nearest test digits.
"""

from __future__ import annotations

import contextlib
import io
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from nnapp.engine.data import test_set
from nnapp.inside.activations import penultimate

if TYPE_CHECKING:
    from nnapp.engine.records import Run
    from nnapp.jobs.handle import TaskHandle
    from nnapp.store.store import Store

TSNE_POINTS = 10_000  # the whole MNIST test set
COMPONENTS = 50  # t-SNE starts from this many principal components, as its authors advise
NEIGHBOURS = 10


def tsne_key(run: Run, points: int = TSNE_POINTS) -> str:
    """One t-SNE per run's weights (a retrain gets its own); a smaller sample gets its own key too."""
    sample = "" if points == TSNE_POINTS else f"-{points}"
    return f"tsne:{run.key}-{(run.weights_sha256 or '')[:8]}{sample}"


def features(store: Store, key: str, points: int = TSNE_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Penultimate features, true labels and predictions of the first `points` test images the run was scored on."""
    model, config = store.load_model(key)
    test_x, test_y = test_set(config.dataset, config.val_fraction, config.seed, config.train_subset)
    features, preds = penultimate(model, test_x[:points])
    return features, test_y[:points].numpy(), preds


def pca(features: np.ndarray, components: int = COMPONENTS) -> dict[str, np.ndarray]:
    """Principal components: `coords` (N×k), `mean` and `basis` (D×k) to project new points, and the
    share of the variance each component explains. Deterministic (signs fixed)."""
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).double()
    mean = x.mean(0)
    centred = x - mean
    k = min(components, *x.shape)
    if x.shape[1] <= 1024:  # exact, from the covariance
        values, vectors = torch.linalg.eigh(centred.T @ centred)
        basis = vectors[:, -k:].flip(1) if k else vectors[:, :0]
    else:  # randomised, for wide features (a CNN without hidden layers)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            basis = torch.pca_lowrank(centred, q=min(k + 10, *x.shape), center=False, niter=4)[2][:, :k]
    signs = torch.sign(basis.gather(0, basis.abs().argmax(0, keepdim=True)))
    basis = basis * torch.where(signs == 0, 1.0, signs)
    coords = centred @ basis
    total = centred.pow(2).sum().clamp(min=1e-12)
    return {
        "coords": coords.float().numpy(),
        "mean": mean.float().numpy(),
        "basis": basis.float().numpy(),
        "explained": (coords.pow(2).sum(0) / total).float().numpy(),
    }


def project(features: np.ndarray, space: dict[str, np.ndarray]) -> np.ndarray:
    """New points (e.g. the user's drawings) in a PCA space made by pca()."""
    return (np.asarray(features, np.float32) - space["mean"]) @ space["basis"]


def place(points: np.ndarray, reference: np.ndarray, reference_2d: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """Put new points into a 2-D map of `reference` at the mean position of their k nearest references."""
    if not len(points):
        return np.zeros((0, 2), np.float32)
    distances = (points**2).sum(1)[:, None] - 2 * points @ reference.T + (reference**2).sum(1)[None, :]
    nearest = np.argsort(distances, axis=1)[:, :k]
    return reference_2d[nearest].mean(1)


class _Stopped(Exception):
    pass


class _IterationReader(io.TextIOBase):
    """Where t-SNE's verbose output goes: its 'Iteration N' lines become progress; a stop request ends it."""

    def __init__(self, on_iteration: Callable[[int], None], should_stop: Callable[[], bool]):
        self.on_iteration, self.should_stop = on_iteration, should_stop

    def write(self, text: str) -> int:
        if self.should_stop():
            raise _Stopped
        if found := re.search(r"Iteration (\d+)", text):
            self.on_iteration(int(found.group(1)))
        return len(text)


def tsne(
    reduced: np.ndarray, on_iteration: Callable[[int, int], None] | None = None, should_stop: Callable[[], bool] | None = None
) -> np.ndarray | None:
    """scikit-learn's t-SNE (Barnes-Hut) to 2-D; None when stopped. Progress comes every 50 iterations."""
    from sklearn.manifold import TSNE

    iterations = 1000
    perplexity = min(30.0, max(1.0, (len(reduced) - 1) / 3))  # below the number of points, as it must be
    model = TSNE(2, perplexity=perplexity, init="pca", random_state=0, max_iter=iterations, verbose=2)
    reader = _IterationReader(lambda i: on_iteration and on_iteration(i, iterations), should_stop or (lambda: False))
    try:
        with contextlib.redirect_stdout(reader):
            return model.fit_transform(reduced).astype(np.float32)
    except _Stopped:
        return None


def tsne_task(payload: dict, store: Store, handle: TaskHandle) -> dict:
    """The "tsne" task: payload {"run": key, "points": n}; result {"coords": [[x, y], ...], ...}."""
    started = time.perf_counter()
    points = int(payload.get("points", TSNE_POINTS))
    handle.report(0, 100, "features of the test digits")
    reduced = pca(features(store, payload["run"], points)[0])["coords"]
    handle.report(5, 100, "t-SNE: nearest neighbours")
    coords = tsne(reduced, lambda i, n: handle.report(5 + 95 * i // n, 100, f"t-SNE: iteration {i} of {n}"), handle.should_stop)
    if coords is None:
        return {}
    return {"coords": np.round(coords, 3).tolist(), "points": len(coords), "seconds": round(time.perf_counter() - started, 1)}
