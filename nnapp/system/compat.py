"""Every workaround of a library's internals on nnapp's side (Streamlit's are in panels/compat.py).

Each is a named function with its reason in a line, a canary test in tests/test_compat.py that fails once
the library no longer needs it or it no longer applies, and a figure in benchmarks/bench_compat.py.
NNAPP_WORKAROUNDS_OFF=name[,name...] (or "all") turns one off, to measure it or to rule it out.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import inspect
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

OFF_ENV = "NNAPP_WORKAROUNDS_OFF"


def enabled(name: str) -> bool:
    """Whether the workaround `name` applies (NNAPP_WORKAROUNDS_OFF lists those that do not)."""
    off = {part.strip() for part in os.environ.get(OFF_ENV, "").split(",")}
    return not ({name, "all"} & off)


# --- torch: optimisers without their torch.compile wrappers --------------------------------------------

UNDECORATED = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")


@functools.cache
def eager(cls: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """`cls` with torch._dynamo's wrappers taken off: building a torch.optim optimiser imports torch._dynamo
    (seconds of every training process's start) for wrappers that do nothing outside torch.compile, which
    nnapp never uses. The same update to the bit; `cls` itself where it has no wrappers or this is off."""
    import torch

    methods = {name: inspect.unwrap(getattr(cls, name)) for name in UNDECORATED}
    update = inspect.unwrap(cls.step)  # under a profiler hook too, when torch has patched cls.step

    @functools.wraps(update)
    def step(self, closure=None):
        # What torch's wrapper does in eager mode: no autograd graph through the update.
        with torch.set_grad_enabled(self.defaults.get("differentiable", False)):
            return update(self, closure)

    if not enabled("eager_optimizers") or (all(methods[n] is getattr(cls, n) for n in UNDECORATED) and update is cls.step):
        return cls
    return type(cls.__name__, (cls,), {**methods, "step": step, "__module__": __name__, "__doc__": cls.__doc__})


# --- glibc: a training process keeps the memory a step frees ---------------------------------------------

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # glibc's largest: blocks under it come from the heap, where a freed one is reused
TRIM_THRESHOLD = 1 << 30  # free memory at the heap's top that stays with the process before it is given back


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep what a training step frees for the next step (call it where a training process
    starts): by default it hands large blocks back at once and each step faults its activations in afresh.
    The peak is the same. Returns whether it applied: glibc only (not macOS, Windows or musl), and not off."""
    if not enabled("keep_freed_memory"):
        return False
    with contextlib.suppress(OSError, AttributeError, TypeError):
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
        return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return False
