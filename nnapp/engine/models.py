"""Torch modules for the network a config describes: nnapp.arch's plan, one module per planned layer."""

from __future__ import annotations

import torch
from torch import nn

from nnapp.engine.arch import Layer, plan
from nnapp.engine.config import RunConfig
from nnapp.engine.registry import ACTIVATIONS


class Normalize(nn.Module):
    """Inputs are pixels in [0, 1]; the model owns its normalisation so every caller feeds the same thing."""

    def __init__(self, mean: float, std: float):
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
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


def build_model(config: RunConfig, classes: int = 10) -> nn.Sequential:
    """The network for `config`; input (N, 1, 28, 28) pixels in [0, 1], output (N, classes) logits."""
    return nn.Sequential(*(module(layer) for layer in plan(config, classes)))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
