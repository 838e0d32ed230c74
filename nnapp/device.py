"""Where and how a process computes: device (CUDA, then MPS, then CPU), precision, torch threads.

Each kind of process sets its threads once, where it starts (the app's server, a training job, the CLI),
by calling set_threads; nothing here happens as a side effect of an import.
"""

from __future__ import annotations

import contextlib
import os

import torch

from nnapp.config import RunConfig


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


def device_label(device: torch.device | None = None, threads: int | None = None) -> str:
    device = device or pick_device()
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU ({threads or training_threads()} threads)"


def use_bf16(config: RunConfig, device: torch.device) -> bool:
    """Whether to train under bf16 autocast. 'auto' picks it where it was measured to be faster."""
    if config.precision == "fp32" or device.type == "mps":
        return False
    if config.precision == "bf16":
        return True
    # On CPUs, even with AVX512-BF16, autocast's casts cost more than they save for models this
    # small: fp32 was 1.2-1.5x faster for every preset (benchmarks/bench.py section 2).
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
