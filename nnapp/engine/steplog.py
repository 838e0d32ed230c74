"""The per-step record of training: numbers kept on the device and read in batches, as rows.

Each row holds the step's loss as optimised (with the config's label smoothing) and, when that
smoothing is on, the same batch's loss without it: the definition the validation loss uses, so
the two curves compare like with like. It comes from the logits the loop keeps for the flush
anyway, all pending steps in one computation at flush time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from nnapp.engine.config import RunConfig
from nnapp.engine.registry import LOSSES

REPORT_EVERY_STEPS = 20  # flush step metrics at most this many steps apart...
REPORT_EVERY_S = 0.5  # ...or this many seconds apart, whichever comes first

LossFn = Callable[
    [torch.Tensor, torch.Tensor], "torch.Tensor | np.ndarray"
]  # (steps × batch × classes, steps × batch) -> per step


@dataclass
class PendingStep:
    """A trained step whose numbers are still on the device: read together at the next flush."""

    step: int
    loss: torch.Tensor
    logits: torch.Tensor
    labels: torch.Tensor
    lr: float


def unsmoothed_loss(config: RunConfig) -> LossFn | None:
    """Per-step losses of several steps' logits without label smoothing (as validation measures them);
    None when there is no smoothing, since the loss as optimised then is that loss already."""
    if not config.label_smoothing:
        return None
    if config.loss == "cross_entropy":
        return _cross_entropy_per_step
    spec = LOSSES[config.loss]
    return lambda logits, labels: torch.stack([spec(x, y, 0.0) for x, y in zip(logits, labels, strict=True)])


def _cross_entropy_per_step(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Cross-entropy of each step's batch, every pending step at once, in numpy: torch's kernels start a thread
    team even for an input this small (20×128×10), which a busy machine makes the training wait for."""
    x = logits.detach().cpu().numpy().astype(np.float64)
    y = labels.cpu().numpy()
    top = x.max(-1, keepdims=True)
    log_sum_exp = np.log(np.exp(x - top).sum(-1)) + top[..., 0]
    return (log_sum_exp - np.take_along_axis(x, y[..., None], -1)[..., 0]).mean(1)


class StepLog:
    """Per-step rows. Reading a number off the device waits for it, so steps are read in batches."""

    def __init__(self, batch_size: int, unsmoothed: LossFn | None = None):
        self.batch_size = batch_size
        self.unsmoothed = unsmoothed
        self.started = self.last = time.perf_counter()
        self.rows: list[dict] = []
        self.pending: list[PendingStep] = []

    def add(self, pending: PendingStep) -> bool:
        """Keep a step; True when a flush is due (at once for the first step: a launch shows progress soonest)."""
        self.pending.append(pending)
        if not self.rows:
            return True
        return len(self.pending) >= REPORT_EVERY_STEPS or time.perf_counter() - self.last >= REPORT_EVERY_S

    def flush(self, epoch: int) -> tuple[list[dict], int | None]:
        """The pending steps as rows, and the first step whose loss is not finite (None when all are)."""
        if not self.pending:
            return [], None
        now = time.perf_counter()
        losses = torch.stack([p.loss for p in self.pending]).float().tolist()
        # accuracy counted here, for all pending steps at once, rather than three small ops per step
        logits, labels = torch.stack([p.logits for p in self.pending]), torch.stack([p.labels for p in self.pending])
        correct = (logits.argmax(2) == labels).sum(1).tolist()
        plain = self._unsmoothed(logits, labels)
        rate = len(self.pending) * self.batch_size / max(now - self.last, 1e-9)
        rows, bad = [], None
        for i, (p, loss, c) in enumerate(zip(self.pending, losses, correct, strict=True)):
            if not math.isfinite(loss):
                bad = p.step
                break
            acc = c / self.batch_size
            rows.append(
                {
                    "step": p.step,
                    "epoch": epoch,
                    "loss": loss,
                    "acc": acc,
                    "lr": p.lr,
                    "samples_per_s": rate,
                    "elapsed": now - self.started,
                }
            )
            if plain is not None:
                rows[-1]["loss_unsmoothed"] = plain[i]
        self.rows.extend(rows)
        self.pending, self.last = [], now
        return rows, bad

    def _unsmoothed(self, logits: torch.Tensor, labels: torch.Tensor) -> list[float] | None:
        if self.unsmoothed is None:
            return None
        with torch.no_grad():
            return self.unsmoothed(logits.float(), labels).tolist()
