"""What each layer of a network computes, caught by forward hooks in one pass.

The layers worth looking at (`probes`) are each block's activation, which in nnapp's order comes after
the convolution, its pooling and its batch norm, so a conv probe sees the block's output, and the
output layer's logits. The hooks only read: the network's output is the same with them (tested), and
they are removed when the pass ends. Hooks need the network's own modules, so these functions take
the nn.Sequential from models.build_model (or Store.load_model), not predict's Inference form.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nnapp.engine.arch import plan
from nnapp.engine.config import RunConfig
from nnapp.engine.limits import CPU_EVAL_BATCH
from nnapp.engine.metrics import to_pixels
from nnapp.predict.inference import to_input

# Activations whose output is above 0 exactly where the unit's input is: "active" means that, and a
# unit never active on the validation set passes no signal (leaky ReLU: 1% of it) and learns nothing.
POSITIVE_WHEN_ON = {"relu": "ReLU", "leaky_relu": "leaky ReLU", "gelu": "GELU"}

# Hooks belong to the module, not to the caller: two threads hooking one shared network (the app caches
# one per run) would catch each other's passes. One lock per network keeps a hooked pass to itself.
_locks: weakref.WeakKeyDictionary[nn.Module, threading.Lock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


@dataclass(frozen=True)
class Probe:
    """A layer whose output is shown: where it is in the network and what it outputs."""

    position: int  # index in the nn.Sequential, the same as in arch.plan
    name: str  # "conv 1", "dense 1", "output"
    kind: str  # "conv", "dense" or "output"
    shape: tuple[int, ...]  # output shape without the batch: (channels, h, w) or (units,)


def probes(config: RunConfig) -> list[Probe]:
    """Each conv block's output (after its activation and pooling), each hidden layer's, and the logits."""
    layers = plan(config)
    found, counts = [], {"conv": 0, "dense": 0}
    for i, layer in enumerate(layers):
        if layer.kind == "activation":
            kind = "conv" if len(layer.shape) == 3 else "dense"
            counts[kind] += 1
            found.append(Probe(i, f"{kind} {counts[kind]}", kind, layer.shape))
    return [*found, Probe(len(layers) - 1, "output", "output", layers[-1].shape)]


@contextmanager
def hooks(model: nn.Sequential, positions: list[int], inputs: bool = False) -> Iterator[dict[int, list[torch.Tensor]]]:
    """Record what the modules at `positions` output (or, with inputs=True, receive) on each call."""
    with _locks_guard:
        lock = _locks.setdefault(model, threading.Lock())
    seen: dict[int, list[torch.Tensor]] = {p: [] for p in positions}
    with lock:
        handles = []
        try:
            for p in positions:
                if inputs:
                    handles.append(model[p].register_forward_pre_hook(lambda m, args, p=p: seen[p].append(args[0].detach())))
                else:
                    handles.append(model[p].register_forward_hook(lambda m, args, out, p=p: seen[p].append(out.detach())))
            yield seen
        finally:
            for handle in handles:
                handle.remove()


@torch.inference_mode()
def layer_outputs(
    model: nn.Sequential, config: RunConfig, digit: np.ndarray
) -> tuple[np.ndarray, list[tuple[Probe, np.ndarray]]]:
    """One digit through the network in one pass: its logits, and every probe's output for it
    ((channels, h, w) feature maps for conv blocks, (units,) for dense layers and the output)."""
    found = probes(config)
    with hooks(model.eval(), [p.position for p in found]) as seen:
        logits = model(to_input(digit))
    return logits[0].numpy(), [(p, seen[p.position][0][0].float().numpy()) for p in found]


def dead_rule(activation: str) -> str | None:
    """What "active" means for this activation, or None where there is no such thing as off."""
    name = POSITIVE_WHEN_ON.get(activation)
    return f"its {name} output is above 0" if name else None


@torch.inference_mode()
def dead_units(model: nn.Sequential, config: RunConfig, images: torch.Tensor) -> list[dict]:
    """Per hidden layer (conv channels, dense neurons): how many units are never active on `images`
    (uint8 N×28×28, the validation set). `dead` is None where the activation has no off (sigmoid, tanh)."""
    layers = [p for p in probes(config) if p.kind != "output"]
    if dead_rule(config.activation) is None:
        return [{"layer": p.name, "units": p.shape[0], "dead": None} for p in layers]
    ever = {p.position: torch.zeros(p.shape[0], dtype=torch.bool) for p in layers}
    model.eval()
    for start in range(0, len(images), CPU_EVAL_BATCH):
        with hooks(model, list(ever)) as seen:
            model(to_pixels(images[start : start + CPU_EVAL_BATCH], torch.device("cpu")))
        for position, (out,) in seen.items():
            on = out > 0
            ever[position] |= on.flatten(2).any(2).any(0) if on.dim() == 4 else on.any(0)
    return [{"layer": p.name, "units": p.shape[0], "dead": int((~ever[p.position]).sum())} for p in layers]


@torch.inference_mode()
def penultimate(model: nn.Sequential, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The features the output layer receives for each image (uint8 N×28×28), and its predictions."""
    model.eval()
    features, preds = [], []
    last = len(model) - 1
    for start in range(0, len(images), CPU_EVAL_BATCH):
        with hooks(model, [last], inputs=True) as seen:
            logits = model(to_pixels(images[start : start + CPU_EVAL_BATCH], torch.device("cpu")))
        features.append(seen[last][0].float())
        preds.append(logits.argmax(1))
    if not features:
        return np.zeros((0, model[last].in_features), np.float32), np.zeros(0, np.int64)
    return torch.cat(features).numpy(), torch.cat(preds).numpy()
