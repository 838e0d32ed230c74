"""The learning-rate range test (Smith 2015), as fastai's lr_find and torch-lr-finder run it.

Train from the config's starting weights while the learning rate grows exponentially from 1e-7 to 10
over 100 steps, one batch each; follow the loss smoothed by an exponential moving average; stop
once it passes four times its lowest value (it has exploded). The suggestion is the rate where the
smoothed loss falls fastest against log(lr), skipping the first 10 and last 5 points as both libraries
do. The model and optimiser are put back as they were afterwards. A background task ("lr_find" in
nnapp.tasks.TASKS) runs it for the Train page and the CLI, cached per config like runs.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from nnapp.engine.config import RunConfig
from nnapp.engine.data import Split
from nnapp.engine.device import autocast, pick_device
from nnapp.engine.registry import LOSSES
from nnapp.engine.states import Status
from nnapp.engine.train import Loop, setup

if TYPE_CHECKING:
    from nnapp.jobs.handle import TaskHandle
    from nnapp.store.store import Store

START, END, STEPS = 1e-7, 10.0, 100
BETA = 0.95  # weight of the moving average of the loss: torch-lr-finder's (fastai's 0.98 lags a decade behind here)
EXPLODED = 4.0  # stop once the smoothed loss is this many times its lowest
SKIP_START, SKIP_END = 10, 5
MIN_FALL = 0.05  # the smoothed loss must fall at least this share below where it started for a suggestion

StepFn = Callable[[int, int, float, float], None]  # (step, steps, lr, smoothed loss)


@dataclass
class RangeTest:
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    suggestion: float | None = None
    message: str = ""
    stopped: str = "end"  # "end" of the range, "exploded", or Status.CANCELLED

    def as_dict(self) -> dict:
        return asdict(self)


def search_key(config: RunConfig, start: float = START, end: float = END, steps: int = STEPS) -> str:
    """The task key: the config's key with the fields the test does not use (its rate, schedule, length)
    set to fixed values, so the finding stays when its suggestion is put into the config."""
    neutral = config.replace(lr=1e-3, schedule="constant", epochs=1, patience=0)
    span = "" if (start, end, steps) == (START, END, STEPS) else f"-{start:g}-{end:g}-{steps}"
    return f"lr_find:{neutral.key()}{span}"


def range_test(loop: Loop, start=START, end=END, steps=STEPS, on_step: StepFn | None = None, should_stop=None) -> RangeTest:
    """Run the test on a set-up loop (train.setup); its model and optimiser are restored afterwards."""
    model, optimizer, config = loop.model, loop.optimizer, loop.config
    saved_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    result, best, average = RangeTest(), math.inf, 0.0
    loss_fn, group = LOSSES[config.loss].function, optimizer.param_groups[0]
    order = torch.randperm(len(loop.train_x), generator=loop.gen).to(loop.device)
    model.train()
    try:
        for i in range(steps):
            if should_stop and should_stop():
                result.stopped = Status.CANCELLED
                break
            lr = group["lr"] = start * (end / start) ** (i / max(steps - 1, 1))
            at = (i * config.batch_size) % max(len(order) - config.batch_size + 1, 1)
            idx = order[at : at + config.batch_size]
            x, y = loop.batch(idx)
            with autocast(loop.device, loop.bf16):
                logits = model(x)
            loss = loss_fn(logits.float(), y, config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = loss.item()
            if not math.isfinite(value):
                result.stopped = "exploded"
                break
            average = BETA * average + (1 - BETA) * value
            smoothed = average / (1 - BETA ** (i + 1))
            result.lrs.append(lr)
            result.losses.append(value)
            result.smoothed.append(smoothed)
            if on_step:
                on_step(i + 1, steps, lr, smoothed)
            best = min(best, smoothed)
            if smoothed > EXPLODED * best:
                result.stopped = "exploded"
                break
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
        optimizer.zero_grad(set_to_none=True)
    result.suggestion, result.message = suggest(result.lrs, result.smoothed, result.stopped)
    return result


def suggest(lrs: list[float], smoothed: list[float], stopped: str = "end") -> tuple[float | None, str]:
    """The rate of steepest descent of the smoothed loss, with a sentence; (None, why) when there is none.

    The descent is looked for before the loss's lowest point: after an explosion a network whose units
    died can "recover" to a flat loss, and that fall is no place to train at.
    """
    if stopped == Status.CANCELLED:
        return None, "No suggestion: the test was cancelled."
    if len(smoothed) - SKIP_START - SKIP_END < 5:
        at = f" at a learning rate of {lrs[-1]:.1e}" if lrs else ""
        return None, (
            f"No suggestion: the loss exploded after {len(smoothed)} steps{at}, before it could be seen to fall. "
            "Try a smaller network, batch norm, or another optimiser."
        )
    end = min(int(np.argmin(smoothed)) + 1, len(smoothed) - SKIP_END)
    losses, logs = np.asarray(smoothed[SKIP_START:end]), np.log10(lrs[SKIP_START:end])
    if len(losses) < 3 or losses.min() > (1 - MIN_FALL) * losses[0]:
        return None, f"No suggestion: the loss did not fall anywhere between {lrs[0]:.0e} and {lrs[-1]:.1e}."
    best = int(np.argmin(np.gradient(losses, logs)))
    lr = float(lrs[SKIP_START + best])
    return lr, f"Suggested learning rate {lr:.1e}: where the smoothed loss falls fastest."


def lr_find(config: RunConfig, data: Split, init_state: dict | None = None, device=None, **kwargs) -> RangeTest:
    """The range test for `config` from its starting weights (fresh, or `init_state` for a fine-tune)."""
    loop = setup(config, data, device or pick_device(), init_state, None)
    return range_test(loop, **kwargs)


def lr_find_payload(config: RunConfig, start: float = START, end: float = END, steps: int = STEPS) -> tuple[str, dict]:
    """The task key and payload of a range test of `config`."""
    return search_key(config, start, end, steps), {"config": config.to_dict(), "start": start, "end": end, "steps": steps}


def lr_find_task(payload: dict, store: Store, handle: TaskHandle) -> dict:
    """The "lr_find" task: payload {"config": {...}, "start", "end", "steps"}; result RangeTest.as_dict()."""
    from nnapp.jobs.runs import prepare  # the split with its personal drawings and starting weights, as training has them

    config = RunConfig.from_dict(payload["config"])
    data, init_state = prepare(config, store)
    span = {k: payload[k] for k in ("start", "end", "steps") if k in payload}

    def progress(step: int, steps: int, lr: float, smoothed: float) -> None:
        handle.report(step, steps, f"learning rate {lr:.1e} · smoothed loss {smoothed:.3f}")

    return lr_find(config, data, init_state, on_step=progress, should_stop=handle.should_stop, **span).as_dict()


def text_plot(result: dict, width: int = 60, height: int = 12) -> str:
    """The smoothed loss against log(lr) in characters, the suggestion marked with ^ under the axis."""
    lrs, losses = result["lrs"], result["smoothed"]
    if len(lrs) < 2:
        return "(too few points to plot)"
    lo_x, hi_x = math.log10(lrs[0]), math.log10(lrs[-1])
    lo_y, hi_y = min(losses), max(losses)
    column = lambda lr: round((math.log10(lr) - lo_x) / max(hi_x - lo_x, 1e-12) * (width - 1))  # noqa: E731
    grid = [[" "] * width for _ in range(height)]
    for lr, loss in zip(lrs, losses, strict=True):
        grid[height - 1 - round((loss - lo_y) / max(hi_y - lo_y, 1e-12) * (height - 1))][column(lr)] = "*"
    lines = [f"{hi_y:8.3f} |" + "".join(grid[0])] + ["         |" + "".join(row) for row in grid[1:-1]]
    lines += [f"{lo_y:8.3f} |" + "".join(grid[-1]), "         +" + "-" * width]
    if result.get("suggestion"):
        lines.append("          " + " " * column(result["suggestion"]) + f"^ {result['suggestion']:.1e}")
    lines.append(f"          {lrs[0]:<10.0e}{'learning rate (log scale)':^{width - 20}}{lrs[-1]:>10.1e}")
    return "\n".join(lines)
