"""Torch modules for the network a config describes: nnapp.arch's plan, one module per planned layer."""

from __future__ import annotations

import torch
from torch import nn

from nnapp.engine.arch import Layer, plan
from nnapp.engine.config import RunConfig
from nnapp.engine.registry import ACTIVATIONS


class Normalize(nn.Module):
    """Inputs are pixels in [0, 1]; the model owns its normalisation so every caller feeds the same thing.
    One mean and deviation for grey images, or one per channel (kept as buffers outside the state dict)."""

    def __init__(self, mean: float | tuple[float, ...], std: float | tuple[float, ...]):
        super().__init__()
        self.mean, self.std = mean, std
        if isinstance(mean, tuple):
            self.register_buffer("shift", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
            self.register_buffer("scale", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.mean, tuple):
            return (x - self.shift) / self.scale
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean}, std={self.std}"


MODULES = {
    "normalize": Normalize,
    "conv": lambda cin, cout, kernel, padding, bias: nn.Conv2d(
        cin, cout, kernel, padding=padding if padding == "same" else 0, bias=bias
    ),
    "pool": nn.MaxPool2d,
    "batchnorm2d": nn.BatchNorm2d,
    "activation": lambda name: ACTIVATIONS[name].build(),
    "flatten": nn.Flatten,
    "linear": lambda cin, cout, bias: nn.Linear(cin, cout, bias=bias),
    "batchnorm1d": nn.BatchNorm1d,
    "dropout": nn.Dropout,
}


def module(layer: Layer) -> nn.Module:
    return MODULES[layer.kind](*layer.args)


def build_model(config: RunConfig, classes: int | None = None) -> nn.Sequential:
    """The network for `config`; input (N, channels, size, size) pixels in [0, 1], output (N, classes) logits
    (one per class of its data set by default)."""
    return nn.Sequential(*(module(layer) for layer in plan(config, classes)))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
