"""The records passed between the training loop, the run store and the views (what a status means is in
nnapp.engine.states). No torch import: the CLI lists runs without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nnapp.engine.config import RunConfig
from nnapp.engine.states import ICONS, ClaimState, Status
from nnapp.system.process import alive

if TYPE_CHECKING:
    import numpy as np
    import torch

RETRAIN = ".retrain"  # a forced retrain trains under key + RETRAIN; the finished run stays as it is until it succeeds


def retrain_key(key: str) -> str:
    return key + RETRAIN


def base_key(key: str) -> str:
    """The run a key belongs to: itself, or the run a retrain under this key replaces."""
    return key.removesuffix(RETRAIN)


@dataclass(frozen=True)
class Claim:
    """What claiming a config in the store found (see ClaimState): serve it, follow `key`, or train it under `key`."""

    key: str
    state: ClaimState


@dataclass
class Progress:
    """What a progress callback receives: new per-step rows, and an epoch row when one ends."""

    step: int
    total_steps: int
    epoch: int  # 1-based epoch in progress (or just finished)
    epochs: int
    samples_per_s: float
    elapsed: float
    steps: list[dict] = field(default_factory=list)
    epoch_row: dict | None = None
    phase: str = "training"  # training, evaluating, testing

    @classmethod
    def from_state(cls, state: dict) -> Progress:
        """The Progress a stored live state describes (no rows): what followers of a run print."""
        names = ("step", "total_steps", "epoch", "epochs", "samples_per_s", "elapsed", "phase")
        return cls(**{k: state[k] for k in names if k in state})

    def as_state(self) -> dict:
        """The live state the store keeps for a running run (no rows), with an ETA."""
        done = self.step / max(self.total_steps, 1)
        return {
            "step": self.step,
            "total_steps": self.total_steps,
            "epoch": self.epoch,
            "epochs": self.epochs,
            "samples_per_s": self.samples_per_s,
            "elapsed": self.elapsed,
            "eta": self.elapsed / done - self.elapsed if done > 0 else None,
            "phase": self.phase,
        }


@dataclass
class FitResult:
    status: Status  # done, cancelled, diverged, pruned
    device: str
    precision: str
    train_seconds: float
    epochs: list[dict]
    steps: list[dict]
    state_dict: dict[str, torch.Tensor]
    test: dict | None = None  # accuracy, loss, confusion, precision, recall, f1
    predictions: np.ndarray | None = None  # predicted class of every test image (uint8)
    probabilities: np.ndarray | None = None  # its probability (float32)
    message: str = ""
    diverged_step: int | None = None


@dataclass(frozen=True)
class Run:
    """One row of the runs table, decoded."""

    key: str
    config: RunConfig | None  # None only for an unreadable run whose config could not be read
    status: Status
    created: float
    started: float | None = None
    finished: float | None = None
    device: str | None = None
    precision: str | None = None
    message: str | None = None
    progress: dict | None = None
    test: dict | None = None
    train_seconds: float | None = None
    weights_sha256: str | None = None
    parent: str | None = None
    pid: int | None = None  # the process that last wrote its status
    weights_file: str | None = None  # under the store's weights/ folder; None: the original KEY.safetensors
    process: str | None = None  # who last wrote its status: nnapp.system.process.identity() of that process
    owner: str | None = None  # who launched it first (a display name); None: from before names were kept

    @property
    def accuracy(self) -> float | None:
        return self.test["accuracy"] if self.test else None

    @property
    def icon(self) -> str:
        return ICONS.get(self.status, "?")

    def is_finished(self) -> bool:
        """Ended so that training the config again would repeat it: launching it shows this run."""
        return self.status in Status.finished()

    def is_active(self) -> bool:
        return self.status in Status.active()

    def is_live(self) -> bool:
        """Active, and the process that last wrote it still runs (its pid alone proves nothing: pids are reused)."""
        return self.is_active() and alive(self.process)

    def is_problem(self) -> bool:
        return self.status in Status.problems()

    def is_unreadable(self) -> bool:
        """Its row could not be read back: `message` says why; it can only be shown by key and deleted."""
        return self.status == Status.UNREADABLE

    def is_partial(self) -> bool:
        return self.status == Status.PRUNED

    def has_weights(self) -> bool:
        return self.status == Status.DONE and bool(self.weights_sha256)

    def is_retrain(self) -> bool:
        return self.key.endswith(RETRAIN)

    def label(self) -> str:
        """'✓ 1a2b3c4d · mnist cnn 32-64 | adamw 0.001 | 3 ep · 99.12%'"""
        if self.is_unreadable():
            reason = self.message if len(self.message or "") <= 60 else self.message[:59] + "…"
            return f"{self.icon} {self.key[:16]} · unreadable: {reason}"
        acc = f" · {self.accuracy * 100:.2f}%" if self.accuracy is not None else ""
        return f"{self.icon} {self.key[:8]} · {self.config.describe()}{acc} · {self.owner or 'unnamed'}"


@dataclass(frozen=True)
class TaskRun:
    """One row of the tasks table: background work other than training a run (a projection, a search…)."""

    key: str  # "<kind>:<subject>", e.g. "tsne:1a2b3c4d5e6f7a8b"
    kind: str
    status: Status  # queued, running, done, failed, cancelled, interrupted
    created: float
    started: float | None
    finished: float | None
    pid: int | None
    message: str | None
    payload: dict
    progress: dict | None  # {"done": i, "total": n, "text": "..."}
    result: dict | None
    process: str | None = None  # who last wrote its status: nnapp.system.process.identity() of that process
    owner: str | None = None  # who asked for it (a display name)

    def is_active(self) -> bool:
        return self.status in Status.active()

    def is_live(self) -> bool:
        """Active, and the process that last wrote it still runs."""
        return self.is_active() and alive(self.process)

    def is_done(self) -> bool:
        return self.status == Status.DONE

    def is_problem(self) -> bool:
        return self.status in Status.problems()
