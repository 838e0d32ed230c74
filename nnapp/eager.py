"""torch.optim optimisers without their torch.compile wrappers, for eager training.

Building any torch.optim optimiser imports torch._dynamo: add_param_group, zero_grad and the state_dict
methods are wrapped in dynamo.disable, and step in graph breaks, which do nothing outside torch.compile.
That import took 1.5-2 s of every process that trains (the CLI's `train`, each job and sweep trial) on a
2-core CPU. nnapp never compiles, so it trains with a subclass whose methods are the undecorated ones: the
same update to the bit (tests/test_registry.py), step hooks and the profiler's labels as before.
"""

from __future__ import annotations

import functools
import inspect

import torch

UNDECORATED = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")


@functools.cache
def eager(cls: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """`cls` with its dynamo wrappers taken off (a class without them is returned as it is)."""
    methods = {name: inspect.unwrap(getattr(cls, name)) for name in UNDECORATED}
    update = inspect.unwrap(cls.step)  # under a profiler hook too, when torch has patched cls.step

    @functools.wraps(update)
    def step(self, closure=None):
        # What torch's wrapper does in eager mode: no autograd graph through the update.
        with torch.set_grad_enabled(self.defaults.get("differentiable", False)):
            return update(self, closure)

    if all(methods[name] is getattr(cls, name) for name in UNDECORATED) and update is cls.step:
        return cls
    return type(cls.__name__, (cls,), {**methods, "step": step, "__module__": __name__, "__doc__": cls.__doc__})
