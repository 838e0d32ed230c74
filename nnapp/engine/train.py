"""The training loop: fit() is a short driver over named steps, as pytorch/examples keeps train() and test().

    setup -> for each epoch: train_epoch -> validate -> callbacks (early stopping, ...) -> test_report

Data lives on the device as one uint8 tensor and each batch is gathered from a shuffled index and turned
into float pixels: no DataLoader, no per-sample Python. Progress leaves through a callback; extensions (early stopping, and whatever needs
the model at an epoch's end) are Callback objects, so the loop itself stays as it is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from nnapp.engine.config import ConfigError, RunConfig
from nnapp.engine.data import Split, augment, load, split
from nnapp.engine.device import autocast, device_label, pick_device, use_bf16
from nnapp.engine.metrics import evaluate, report, to_pixels
from nnapp.engine.models import build_model
from nnapp.engine.records import FitResult, Progress
from nnapp.engine.registry import LOSSES, OPTIMIZERS, SCHEDULES
from nnapp.engine.schedules import Schedule
from nnapp.engine.states import Status
from nnapp.engine.steplog import REPORT_EVERY_S, REPORT_EVERY_STEPS, PendingStep, StepLog, unsmoothed_loss  # noqa: F401

ProgressFn = Callable[[Progress], None]


@dataclass
class Loop:
    """What one training run works with; the steps below read it and advance it."""

    config: RunConfig
    data: Split
    device: torch.device
    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Schedule | None
    bf16: bool
    channels_last: bool
    train_x: torch.Tensor  # all training images as uint8 on the device: each batch is gathered, then made float (batch())
    train_y: torch.Tensor
    gen: torch.Generator  # batch order and augmentation, from the seed
    steps_per_epoch: int
    log: StepLog
    on_progress: ProgressFn | None = None
    threads: int = 1  # torch threads at the start (a governor may lend some to busy neighbours meanwhile)
    step: int = 0
    lr: float = 0.0
    train_seconds: float = 0.0
    epochs: list[dict] = field(default_factory=list)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.config.epochs

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The training images at `idx` as float pixels (augmented where the config says) and their labels.

        Gathering uint8 rows and converting them is as fast per step as gathering them from a float copy
        of the whole set, and a launch does not wait for that copy (nor hold its memory)."""
        xb = to_pixels(self.train_x.index_select(0, idx), self.device)  # index_select: faster than x[idx]
        if self.config.augment:
            xb = augment(xb, self.gen)
        if self.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        return xb, self.train_y.index_select(0, idx)

    def report(self, epoch: int, rate: float = 0.0, phase: str = "training", steps=(), epoch_row=None) -> None:
        if self.on_progress:
            elapsed = time.perf_counter() - self.log.started
            progress = Progress(
                self.step, self.total_steps, epoch, self.config.epochs, rate, elapsed, list(steps), epoch_row, phase
            )
            self.on_progress(progress)


@dataclass(frozen=True)
class Outcome:
    """How a stretch of training ended."""

    status: Status = Status.DONE  # done, cancelled, diverged, pruned
    message: str = ""
    diverged_step: int | None = None

    @classmethod
    def diverged(cls, step: int, what: str = "loss became non-finite at step") -> Outcome:
        return cls(Status.DIVERGED, f"the {what} {step}; try a lower learning rate", step)


class Callback:
    """A hook into fit(), Lightning-style: override what you need."""

    def on_epoch_end(self, loop: Loop, row: dict) -> str | Outcome | None:
        """After an epoch's validation; return a message to end training there (the run still counts as done),
        or an Outcome to end it with another status (a sweep's pruner: 'pruned', no test report, no weights)."""
        return None

    def on_fit_start(self, loop: Loop) -> None:
        """Before the first epoch, with the model as it starts (e.g. record the initial weights)."""

    def on_fit_end(self, loop: Loop) -> None:
        """After the last epoch, before the test report: e.g. put back the weights worth keeping."""


def make_optimizer(config: RunConfig, model: nn.Module, device: torch.device | None = None) -> torch.optim.Optimizer:
    # The fused kernels update every tensor in one call instead of a Python loop over parameters.
    fused = device is not None and device.type in ("cpu", "cuda")
    spec = OPTIMIZERS[config.optimizer]
    return spec.build(model.parameters(), config.lr, config.weight_decay, config.momentum, fused)


def make_schedule(config: RunConfig, steps_per_epoch: int) -> Schedule | None:
    """step -> (learning rate, momentum or None) for the config's schedule; None for a constant rate."""
    cycle_momentum = OPTIMIZERS[config.optimizer].momentum
    return SCHEDULES[config.schedule].make(config.lr, steps_per_epoch, config.epochs, cycle_momentum)


def setup(config: RunConfig, data: Split, device: torch.device, init_state: dict | None, on_progress: ProgressFn | None) -> Loop:
    """The model, optimiser, schedule and device-resident training tensors for one run."""
    steps_per_epoch = len(data.train_x) // config.batch_size
    if steps_per_epoch < 1:  # validate() refuses such configs; a split handed in directly is checked here
        raise ConfigError({"batch_size": f"is larger than the {len(data.train_x)} training images: no step would run"})
    channels_last = config.model == "cnn" and device.type != "mps"
    torch.manual_seed(config.seed)
    model = build_model(config).to(device)
    if init_state is not None:
        model.load_state_dict(init_state)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return Loop(
        config=config,
        data=data,
        device=device,
        model=model,
        optimizer=make_optimizer(config, model, device),
        schedule=make_schedule(config, steps_per_epoch),
        bf16=use_bf16(config, device),
        channels_last=channels_last,
        train_x=data.train_x.to(device),
        train_y=data.train_y.to(device),
        gen=torch.Generator().manual_seed(config.seed),
        steps_per_epoch=steps_per_epoch,
        log=StepLog(config.batch_size, unsmoothed_loss(config)),
        on_progress=on_progress,
        threads=torch.get_num_threads(),
        lr=config.lr,
    )


def train_epoch(loop: Loop, epoch: int, should_stop: Callable[[], bool] | None) -> Outcome:
    """One pass over the shuffled training set."""
    config, model, optimizer, log = loop.config, loop.model, loop.optimizer, loop.log
    loss_fn, smoothing, bs = LOSSES[config.loss].function, config.label_smoothing, config.batch_size
    group = optimizer.param_groups[0]
    model.train()
    perm = torch.randperm(len(loop.train_x), generator=loop.gen).to(loop.device)
    for b in range(loop.steps_per_epoch):
        if should_stop and should_stop():
            return Outcome(Status.CANCELLED, f"cancelled at step {loop.step}")
        xb, yb = loop.batch(perm[b * bs : (b + 1) * bs])
        if loop.schedule is not None:
            loop.lr, momentum = loop.schedule(loop.step)
            group["lr"] = loop.lr
            if momentum is not None:
                group["momentum"] = momentum
        with autocast(loop.device, loop.bf16):
            logits = model(xb)
        loss = loss_fn(logits.float(), yb, smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loop.step += 1
        if log.add(PendingStep(loop.step, loss.detach(), logits.detach(), yb, loop.lr)) and (bad := _flush(loop, epoch)):
            return Outcome.diverged(bad)
    bad = _flush(loop, epoch)
    return Outcome.diverged(bad) if bad else Outcome()


def _flush(loop: Loop, epoch: int) -> int | None:
    rows, bad = loop.log.flush(epoch)
    if rows:
        loop.report(epoch, rows[-1]["samples_per_s"], steps=rows)
    return bad


def validate(loop: Loop, epoch: int, started: float, first_row: int) -> dict:
    """The epoch's row: its mean training loss and accuracy, and validation loss and accuracy."""
    loop.report(epoch, phase="evaluating")
    val = evaluate(loop.config, loop.model, loop.data.val_x, loop.data.val_y, loop.device, loop.bf16)
    rows = loop.log.rows[first_row:] or [{"loss": float("nan"), "acc": float("nan")}]
    plain = [r["loss_unsmoothed"] for r in rows if "loss_unsmoothed" in r]  # validation's definition
    return {
        "epoch": epoch,
        "train_loss": sum(r["loss"] for r in rows) / len(rows),
        "train_loss_unsmoothed": sum(plain) / len(plain) if plain else None,
        "train_acc": sum(r["acc"] for r in rows) / len(rows),
        "val_loss": val["loss"],
        "val_acc": val["accuracy"],
        "lr": loop.lr,
        "seconds": time.perf_counter() - started,
    }


class EarlyStopping(Callback):
    """Stop after `patience` epochs without a better validation loss, and keep the best epoch's weights."""

    def __init__(self, patience: int):
        self.patience, self.stale = patience, 0
        self.best_loss, self.best_state = math.inf, None

    def on_epoch_end(self, loop: Loop, row: dict) -> str | None:
        if row["val_loss"] < self.best_loss:
            self.best_loss, self.stale = row["val_loss"], 0
            self.best_state = {k: v.detach().clone() for k, v in loop.model.state_dict().items()}
            return None
        self.stale += 1
        if self.stale >= self.patience:
            return f"stopped early after epoch {row['epoch']}: no better validation loss for {self.stale} epochs"
        return None

    def on_fit_start(self, loop: Loop) -> None:
        """Before the first epoch, with the model as it starts (e.g. record the initial weights)."""

    def on_fit_end(self, loop: Loop) -> None:
        if self.best_state is not None:
            loop.model.load_state_dict(self.best_state)


def test_report(loop: Loop, result: FitResult) -> None:
    """Evaluate on the test set: accuracy, loss, confusion matrix, per-class scores and every prediction."""
    loop.report(loop.config.epochs, phase="testing")
    test = evaluate(loop.config, loop.model, loop.data.test_x, loop.data.test_y, loop.device, loop.bf16)
    classes = len(loop.config.data_spec().classes)
    result.test = {"accuracy": test["accuracy"], "loss": test["loss"], **report(loop.data.test_y, test["pred"], classes)}
    result.predictions = test["pred"].numpy().astype(np.uint8)
    result.probabilities = test["prob"].numpy().astype(np.float32)


def fit(
    config: RunConfig,
    data: Split | None = None,
    device: torch.device | None = None,
    on_progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    init_state: dict[str, torch.Tensor] | None = None,
    callbacks: Sequence[Callback] = (),
) -> FitResult:
    """Train `config` and evaluate it on the test set.

    Args:
        config: a config with no validation problems.
        data: the split to train on; loaded from the config when omitted.
        device: defaults to pick_device().
        on_progress: called with new step rows every few steps and once at each epoch end.
        should_stop: polled every step; returning True ends the run as cancelled.
        init_state: weights to start from (fine-tuning) instead of a fresh initialisation.
        callbacks: hooks called at each epoch's end and after the last one.
    """
    device = device or pick_device()
    data = data or split(load(config.dataset), config.val_fraction, config.seed, config.train_subset)
    loop = setup(config, data, device, init_state, on_progress)
    callbacks = [*callbacks, EarlyStopping(config.patience)] if config.patience else list(callbacks)
    for callback in callbacks:
        callback.on_fit_start(loop)
    outcome = Outcome()
    for epoch in range(1, config.epochs + 1):
        started, first_row = time.perf_counter(), len(loop.log.rows)
        outcome = train_epoch(loop, epoch, should_stop)
        loop.train_seconds += time.perf_counter() - started
        if outcome.status != Status.DONE:
            break
        row = validate(loop, epoch, started, first_row)
        loop.epochs.append(row)
        loop.report(epoch, loop.steps_per_epoch * config.batch_size / max(row["seconds"], 1e-9), epoch_row=row)
        if not math.isfinite(row["val_loss"]):
            outcome = Outcome.diverged(loop.step, "validation loss became non-finite after step")
            break
        stops = [message for c in callbacks if (message := c.on_epoch_end(loop, row))]
        if stops:
            outcome = stops[0] if isinstance(stops[0], Outcome) else Outcome(message=stops[0])
            break
    return finish(loop, outcome, callbacks)


def finish(loop: Loop, outcome: Outcome, callbacks: Sequence[Callback]) -> FitResult:
    """The run's result; a run that ended well gets its best weights back and a test report."""
    if outcome.status == Status.DONE:
        for callback in callbacks:
            callback.on_fit_end(loop)
    result = FitResult(
        status=outcome.status,
        device=device_label(loop.device, loop.threads),
        precision="bf16" if loop.bf16 else "fp32",
        train_seconds=loop.train_seconds,
        epochs=loop.epochs,
        steps=loop.log.rows,
        state_dict={k: v.detach().to("cpu").contiguous() for k, v in loop.model.state_dict().items()},
        message=outcome.message,
        diverged_step=outcome.diverged_step,
    )
    if outcome.status == Status.DONE:
        test_report(loop, result)
    return result
