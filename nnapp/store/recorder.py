"""HistogramRecorder: a training callback that stores per-layer histograms of weights and gradient norms.

At the start (epoch 0) and at each epoch's end it histograms each weighted layer's weights and the
gradient norm of each of its units. The gradients are the ones the last training step of the epoch
left on the parameters (the loop clears them before each backward pass, not after the step), so
recording costs no extra forward or backward pass: a few reductions per layer and one small write.
benchmarks/bench.py measures what it adds to the fast preset's training time.
"""

from __future__ import annotations

import math

import torch

from nnapp.engine.arch import weighted
from nnapp.engine.train import Callback, Loop
from nnapp.store.histograms import Histograms

BINS = 30


class HistogramRecorder(Callback):
    """Writes histogram rows for run `key` into `store` (see nnapp.histograms for what they hold)."""

    def __init__(self, store: Histograms, key: str, bins: int = BINS):
        self.store, self.key, self.bins = store, key, bins

    def __repr__(self) -> str:
        return f"HistogramRecorder({self.key!r}, bins={self.bins})"

    def on_fit_start(self, loop: Loop) -> None:
        self.store.add_histograms(self.key, layer_histograms(loop.model, loop.config, 0, self.bins))

    def on_epoch_end(self, loop: Loop, row: dict) -> str | None:
        self.store.add_histograms(self.key, layer_histograms(loop.model, loop.config, row["epoch"], self.bins))
        return None


@torch.no_grad()
def layer_histograms(model: torch.nn.Module, config, epoch: int, bins: int = BINS) -> list[dict]:
    """Histogram rows of every weighted layer of `model` (built from `config`) as it is now."""
    rows = []
    for position, name in weighted(config):
        weight = model[position].weight
        units = weight.detach().float()
        rows.append(_row(epoch, name, "weight", position, units.flatten(), units.norm(), bins))
        if weight.grad is not None:
            per_unit = weight.grad.detach().float().reshape(weight.shape[0], -1).norm(dim=1)
            rows.append(_row(epoch, name, "grad", position, per_unit, per_unit.norm(), bins))
    return [row for row in rows if row is not None]


def _row(epoch: int, layer: str, kind: str, position: int, values: torch.Tensor, norm: torch.Tensor, bins: int) -> dict | None:
    """One histogram row; None when the values are not all finite (a diverging run)."""
    lo, hi = (float(v) for v in torch.aminmax(values))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    if not hi > lo:  # all equal: a narrow range around the value
        hi = lo + max(abs(lo), 1.0) * 1e-6
    counts = torch.histc(values, bins, lo, hi)
    return {
        "epoch": epoch,
        "layer": layer,
        "kind": kind,
        "position": position,
        "lo": lo,
        "hi": hi,
        "norm": float(norm),
        "counts": [int(c) for c in counts.tolist()],
    }
