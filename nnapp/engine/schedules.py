"""Learning-rate schedules as plain arithmetic: step -> (learning rate, SGD momentum or None).

The same numbers torch's OneCycleLR and LambdaLR work out (a test compares them step by step), at about
a microsecond a step where a scheduler call takes tens. Each maker takes the peak rate, the steps per
epoch, the epochs and whether the optimiser's momentum cycles; None means a constant rate (no per-step
update at all).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

Schedule = Callable[[int], tuple[float, float | None]]


def constant(lr: float, steps_per_epoch: int, epochs: int, cycle_momentum: bool) -> Schedule | None:
    return None


def step(lr: float, steps_per_epoch: int, epochs: int, cycle_momentum: bool) -> Schedule:
    every = max(1, epochs // 3) * steps_per_epoch  # divide by 10 twice over the run
    return lambda s: (lr * 0.1 ** (s // every), None)


def cosine(lr: float, steps_per_epoch: int, epochs: int, cycle_momentum: bool) -> Schedule:
    total = steps_per_epoch * epochs
    return lambda s: (lr * (0.5 * (1 + math.cos(math.pi * min(s, total) / total))), None)


def one_cycle(lr: float, steps_per_epoch: int, epochs: int, cycle_momentum: bool) -> Schedule:
    return functools.partial(_one_cycle, max_lr=lr, total=steps_per_epoch * epochs, cycle_momentum=cycle_momentum)


def _one_cycle(step: int, max_lr: float, total: int, cycle_momentum: bool) -> tuple[float, float | None]:
    """torch's OneCycleLR (pct_start 0.25, cosine annealing, momentum 0.95 -> 0.85 -> 0.95 for SGD)."""
    initial = max_lr / 25.0
    warm_end = float(0.25 * total) - 1
    if step <= warm_end:
        pct = step / warm_end if warm_end > 0 else 1.0  # torch divides by zero when the warm-up is one step
        return _anneal(initial, max_lr, pct), _anneal(0.95, 0.85, pct) if cycle_momentum else None
    pct = (step - warm_end) / (total - 1 - warm_end)
    return _anneal(max_lr, initial / 1e4, pct), _anneal(0.85, 0.95, pct) if cycle_momentum else None


def _anneal(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
