"""The network a config describes, as plain arithmetic: layers, output shapes, parameter counts.

models.build_model turns this plan into torch modules one for one; everything that only needs to know
the network's size (the Train page's parameter count, the CLI's `show`, limits on model size) reads the
plan instead, without importing torch or allocating a weight. A test checks the plan against the
modules torch builds.
"""

from __future__ import annotations

from dataclasses import dataclass

from nnapp.engine.config import RunConfig
from nnapp.engine.registry import ACTIVATIONS


@dataclass(frozen=True)
class Layer:
    """One layer: what it is (kind and constructor arguments), what it outputs, what it weighs."""

    kind: str  # normalize, conv, pool, batchnorm2d, activation, flatten, linear, batchnorm1d, dropout
    args: tuple  # the constructor's arguments, in the order models.py passes them
    shape: tuple[int, ...]  # output shape without the batch dimension
    params: int

    def __repr__(self) -> str:
        return f"{self.kind}{self.args}"

    @property
    def label(self) -> str:
        if self.kind == "activation":
            return ACTIVATIONS[self.args[0]].cls.rpartition(".")[2] + "()"
        names = {
            "normalize": "Normalize(mean={}, std={})",
            "conv": "Conv2d({}, {}, kernel_size={}, padding={}, bias={})",
            "pool": "MaxPool2d({})",
            "batchnorm2d": "BatchNorm2d({})",
            "flatten": "Flatten()",
            "linear": "Linear({}, {}, bias={})",
            "batchnorm1d": "BatchNorm1d({})",
            "dropout": "Dropout(p={})",
        }
        return names[self.kind].format(*self.args)

    @property
    def outputs(self) -> int:
        """Values this layer outputs per image."""
        return _product(self.shape)


def plan(config: RunConfig, classes: int | None = None) -> list[Layer]:
    """The layers of `config`'s network; input (channels, size, size) pixels in [0, 1] as its data set has them,
    output `classes` logits (one per class of the data set by default).

    A CNN block is conv, max-pool, batch norm, activation: pooling straight after the convolution means
    batch norm and the activation touch a quarter of the values (faster training on a CPU), and
    with ReLU and no batch norm it is the same function as conv-act-pool, since max-pooling commutes
    with monotonic activations.
    """
    spec = config.data_spec()
    classes = len(spec.classes) if classes is None else classes
    shape: tuple[int, ...] = spec.input_shape
    layers = [Layer("normalize", (spec.mean, spec.std), shape, 0)]
    bn = config.batch_norm
    if config.model == "cnn":
        for out_channels, kernel, pool in config.conv:
            channels, size = shape[0], shape[1]
            if config.padding == "valid":
                size = size - kernel + 1
            weights = channels * out_channels * kernel * kernel + (0 if bn else out_channels)
            shape = (out_channels, size, size)
            layers.append(Layer("conv", (channels, out_channels, kernel, config.padding, not bn), shape, weights))
            if pool > 1:
                shape = (out_channels, size // pool, size // pool)
                layers.append(Layer("pool", (pool,), shape, 0))
            if bn:
                layers.append(Layer("batchnorm2d", (out_channels,), shape, 2 * out_channels))
            layers.append(Layer("activation", (config.activation,), shape, 0))
    width = _product(shape)
    layers.append(Layer("flatten", (), (width,), 0))
    for hidden in config.hidden:
        layers.append(Layer("linear", (width, hidden, not bn), (hidden,), width * hidden + (0 if bn else hidden)))
        if bn:
            layers.append(Layer("batchnorm1d", (hidden,), (hidden,), 2 * hidden))
        layers.append(Layer("activation", (config.activation,), (hidden,), 0))
        if config.dropout:
            layers.append(Layer("dropout", (config.dropout,), (hidden,), 0))
        width = hidden
    layers.append(Layer("linear", (width, classes, True), (classes,), width * classes + classes))
    return layers


def _product(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def parameter_count(config: RunConfig) -> int:
    return sum(layer.params for layer in plan(config))


def summary(config: RunConfig) -> list[dict]:
    """One row per layer: index, layer, output shape (without the batch) and parameter count."""
    return [
        {"#": i, "layer": layer.label, "output": "×".join(map(str, layer.shape)), "params": layer.params}
        for i, layer in enumerate(plan(config))
    ]


def summary_text(config: RunConfig) -> str:
    lines = [f"{r['#']:>3}  {r['layer'][:60]:<60} {r['output']:>12} {r['params']:>10,}" for r in summary(config)]
    lines.append(f"total parameters: {parameter_count(config):,}")
    return "\n".join(lines)


def weighted(config: RunConfig) -> list[tuple[int, str]]:
    """(position, name) of the layers with weights, named as their probes: each block's convolution
    ("conv 1"), each hidden linear layer ("dense 1"), and the output layer."""
    layers = plan(config)
    found, counts = [], {"conv": 0, "dense": 0}
    for i, layer in enumerate(layers):
        if layer.kind in ("conv", "linear"):
            kind = "conv" if layer.kind == "conv" else "dense"
            counts[kind] += 1
            found.append((i, f"{kind} {counts[kind]}"))
    last, _ = found[-1]
    return [*found[:-1], (last, "output")]
