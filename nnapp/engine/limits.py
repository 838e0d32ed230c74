"""How big a network may be, and how much memory its training needs against what this machine has.

Worked out from nnapp.arch's plan, without building the model: the Train page shows it on every rerun,
and the CLI, the job manager and the page refuse the same configs (RunConfig.validate calls
size_problems) with a message that names the sizes.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from nnapp.engine.arch import Layer, plan
from nnapp.engine.config import RunConfig
from nnapp.engine.registry import OPTIMIZERS

MAX_PARAMETERS = 100_000_000  # far beyond what 28×28 images need; 400 MB of weights before any training state
FLOAT = 4  # bytes: weights, gradients, optimiser state and activations are float32
POOL_INDICES = 2  # max-pooling keeps an int64 index per output for the backward pass: two floats' worth
EVAL_BATCH = 2000  # images per evaluation batch on a GPU (nnapp.metrics reads it from here)
CPU_EVAL_BATCH = 256  # on a CPU: small enough that a layer's activations stay in cache
RUNTIME = 1 << 30  # the process itself: Python, torch's libraries and workspace, the uint8 data set
MEMORY_SHARE = 0.8  # of the memory available when the config is checked; the rest is left to everyone else
GPU_SHARE = 0.9  # of the GPU's memory
ENV_LIMIT = "NNAPP_MEMORY_LIMIT"  # e.g. 8GiB: replaces the limit worked out from the machine


@dataclass(frozen=True)
class Estimate:
    """Bytes one training process needs at its peak, by what holds them."""

    parameters: int
    weights: int
    gradients: int
    optimizer: int  # the optimiser's state per parameter (Adam: two moments; SGD: a momentum buffer)
    activations: int  # saved for the backward pass at the batch size, plus the gradients flowing back
    data: int  # the training images as float pixels on the device
    runtime: int
    optimizer_name: str = ""
    batch_size: int = 0

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + self.data + self.runtime

    @property
    def fixed(self) -> int:
        """What no batch size changes."""
        return self.total - self.activations

    def breakdown(self) -> str:
        parts = [
            ("weights", self.weights),
            ("gradients", self.gradients),
            (f"{self.optimizer_name} state", self.optimizer),
            (f"activations at batch {self.batch_size:,}", self.activations),
            ("training images", self.data),
            ("runtime", self.runtime),
        ]
        return ", ".join(f"{name} {size_text(n)}" for name, n in parts if n)


@dataclass(frozen=True)
class Limit:
    bytes: int
    source: str  # where the figure comes from, for the message


def size_text(n: float) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{int(n)} bytes"


def estimate(config: RunConfig) -> Estimate:
    """The memory training `config` needs at its peak; `config` must have no problems of its own."""
    layers = plan(config)
    params = sum(layer.params for layer in layers)
    spec = config.data_spec()
    pixels = spec.channels * spec.image_size**2
    biggest = max(layer.outputs for layer in layers)
    saved = pixels + sum(_saved(layer) for layer in layers)
    train = config.batch_size * FLOAT * (saved + 2 * biggest)  # forward's saved tensors, then two gradients at once
    evaluate = EVAL_BATCH * FLOAT * 2 * biggest  # no autograd: a layer's input and output
    optimizer = OPTIMIZERS[config.optimizer]
    return Estimate(
        parameters=params,
        weights=params * FLOAT,
        gradients=params * FLOAT,
        optimizer=params * FLOAT * optimizer.state,
        activations=max(train, evaluate),
        data=config.train_images() * pixels * FLOAT,
        runtime=RUNTIME,
        optimizer_name=optimizer.cls.rpartition(".")[2],
        batch_size=config.batch_size,
    )


def _saved(layer: Layer) -> int:
    """Values one image keeps for the backward pass at this layer's output."""
    if layer.kind in ("normalize", "flatten", "dropout"):
        return 0  # arithmetic with constants, a view; dropout's mask is a byte per value
    return layer.outputs * (1 + POOL_INDICES if layer.kind == "pool" else 1)


def size_problems(config: RunConfig) -> dict[str, str]:
    """The network's size and its training's memory against the limits, by the field to change."""
    params = sum(layer.params for layer in plan(config))
    if params > MAX_PARAMETERS:
        return {
            "model": f"the network has {params:,} parameters ({size_text(params * FLOAT)} of weights); "
            f"the limit is {MAX_PARAMETERS:,}: use fewer or narrower layers"
        }
    try:
        limit = memory_limit()
    except ValueError as err:
        return {"model": f"the memory limit cannot be read: {err}"}
    need = estimate(config)
    if limit is None or need.total <= limit.bytes:
        return {}
    field, advice = ("batch_size", "use a smaller batch") if need.fixed <= limit.bytes else ("model", "use a smaller network")
    return {
        field: f"training needs about {size_text(need.total)} ({need.breakdown()}), more than the "
        f"{size_text(limit.bytes)} allowed ({limit.source}): {advice}"
    }


def memory_limit() -> Limit | None:
    """What one training may use: NNAPP_MEMORY_LIMIT, else a share of the GPU's memory when training
    would run on CUDA, else a share of the memory available now; None when nothing can be read."""
    configured = os.environ.get(ENV_LIMIT, "").strip()
    if configured:
        return Limit(parse_size(configured), f"set by {ENV_LIMIT}")
    gpu = _cuda_memory()
    if gpu is not None:
        total, name = gpu
        return Limit(int(total * GPU_SHARE), f"{GPU_SHARE:.0%} of the {size_text(total)} of {name}")
    available = available_memory()
    if available is None:
        return None
    return Limit(int(available * MEMORY_SHARE), f"{MEMORY_SHARE:.0%} of the {size_text(available)} of memory available now")


def parse_size(text: str) -> int:
    """'8GiB', '512 MiB', '2G', '1000000' -> bytes; ValueError for anything else."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*", text, re.I)
    if not match:
        raise ValueError(f"{ENV_LIMIT}={text[:40]!r} is not a size such as 8GiB")
    number, unit = float(match[1]), match[2].upper()
    return int(number * (1 << (10 * " KMGT".index(unit or " "))))


@functools.cache
def _cuda_memory() -> tuple[int, str] | None:
    """(total bytes, name) of the GPU training would use; None without CUDA. The total does not change."""
    import torch  # only here: the CLI's list and show never check a config's size

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return props.total_memory, props.name


def available_memory() -> int | None:
    """Bytes available now: the kernel's MemAvailable, within a container's own limit."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    room = _cgroup_room()
    return min(available, room) if room is not None else available


def _cgroup_room() -> int | None:
    try:
        cap = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        return max(int(cap) - used, 0) if cap != "max" else None
    except (OSError, ValueError):
        return None
