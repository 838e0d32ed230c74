"""Where and how a process computes: device (CUDA, then MPS, then CPU), precision, torch threads.

Each kind of process sets its threads once, where it starts (the app's server, a training job, the CLI),
by calling set_threads; nothing here happens as a side effect of an import.
"""

from __future__ import annotations

import contextlib
import os

import torch

from nnapp.engine.config import RunConfig
from nnapp.system.process import cpu_sample, noted_window


def pick_device() -> torch.device:
    """CUDA, then Apple MPS, then CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_count() -> int:
    """CPUs this process may run on (a container's or taskset's limit, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def training_threads() -> int:
    """Torch threads for one training process: one per CPU it may use."""
    return cpu_count()


def set_threads(n: int) -> None:
    torch.set_num_threads(max(1, n))


SHARE_KEPT = 0.65  # a neighbour busy up to this share of one CPU still leaves its thread to training (bench section 9)


# Seconds between the governor's looks at the machine, and how many looks in a row must find it busy before
# threads are given up: a neighbour that stays busy is answered within about a second, while a burst shorter
# than that (a browser's redraw) leaves the threads alone: by the time it is seen it is over.
LOOK_EVERY = 0.5
BUSY_LOOKS = 2


class ThreadGovernor:
    """Keeps a CPU training's torch threads at the number of CPUs other processes leave it.

    With every CPU busy, a thread of an OpenMP team that has to share its core stalls the whole team at
    each barrier: beside one busy neighbour, 2-thread training on 2 cores is far slower than 1-thread
    training (bench section 9). So every LOOK_EVERY seconds this compares the machine's busy time (/proc/stat) with this
    process's own CPU time; threads go down to the CPUs left over (at least 1) once BUSY_LOOKS looks in a
    row find fewer left, and back up (at most `most`) at the first look that finds more. Where the process
    noted the machine before (process.note_machine), the first look is at once and decides alone: a
    neighbour busy before the training started gets its CPU from the first step. Linux only; elsewhere the
    threads stay as they are.
    """

    def __init__(self, most: int, every: float = LOOK_EVERY, busy_looks: int = BUSY_LOOKS):
        self.most, self.every, self.busy_looks = most, every, busy_looks
        self.threads = most
        self._busy = 0  # looks in a row that found fewer CPUs left than threads in use
        self._last = cpu_sample()
        window = noted_window(every)
        if window is not None:  # the process noted the machine before: a first look at once, which decides alone
            self._busy = busy_looks - 1
            self._look(*window)

    def tick(self) -> int:
        """Call often (each progress report); acts at most every `every` seconds. Returns the threads in use."""
        now = cpu_sample()
        if now is None or self._last is None or now[0] - self._last[0] < self.every:
            return self.threads
        last, self._last = self._last, now
        return self._look(last, now)

    def _look(self, then: tuple[float, float, float], now: tuple[float, float, float]) -> int:
        (wall0, busy0, own0), (wall1, busy1, own1) = then, now
        others = max(0.0, (busy1 - busy0) - (own1 - own0)) / (wall1 - wall0)  # CPUs the rest of the machine used
        threads = max(1, min(self.most, int(self.most - others + SHARE_KEPT)))
        self._busy = self._busy + 1 if threads < self.threads else 0
        if threads > self.threads or self._busy >= self.busy_looks:
            self.threads, self._busy = threads, 0
            set_threads(threads)
        return self.threads


def device_label(device: torch.device | None = None, threads: int | None = None) -> str:
    device = device or pick_device()
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    n = threads or training_threads()
    return f"CPU ({n} thread{'s' * (n > 1)})"


def use_bf16(config: RunConfig, device: torch.device) -> bool:
    """Whether to train under bf16 autocast. 'auto' picks it where it was measured to be faster."""
    if config.precision == "fp32" or device.type == "mps":
        return False
    if config.precision == "bf16":
        return True
    # On CPUs, even with AVX512-BF16, autocast's casts cost more than they save for models this small
    # (benchmarks/bench.py section 2).
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
