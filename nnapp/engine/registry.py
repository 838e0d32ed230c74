"""The tables the rest of nnapp reads: optimisers, learning-rate schedules, activations, losses, data sets.

Config validation, the model and optimiser builders, the CLI's help and the Train page's choices all
ask these tables; nobody keeps a list of their own. Adding an optimiser or a data set is one entry here
(and its test); the data sets people make are looked up beside this table (nnapp.engine.datasets). This module imports no torch, so the CLI can check a config and print its
help without it: torch classes are named by their dotted path and imported when first built.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from nnapp.engine import schedules

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


class UnknownName(ValueError):
    """A name that is not in a registry; the message lists the known ones."""


class Registry(Generic[T]):
    """name -> spec, in the order entries were given (the order the UI shows them in)."""

    def __init__(self, kind: str, entries: dict[str, T]):
        self.kind = kind
        self._entries = dict(entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._entries)})"

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownName(f"unknown {self.kind} {name!r}; choose from {', '.join(self._entries)}") from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def items(self):
        return self._entries.items()


@functools.cache
def resolve(path: str) -> Any:
    """'package.module.Attr' -> the object, imported on first use."""
    module, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class OptimizerSpec:
    cls: str  # dotted path of the torch.optim class
    help: str
    lr: float  # a peak learning rate that usually works for these networks, offered in the help
    momentum: bool = False  # takes the config's momentum, and one-cycle cycles it as torch's OneCycleLR does
    fused: bool = True  # has a fused kernel (one call updates every tensor) on CPU and CUDA
    state: int = 2  # tensors of state it keeps per parameter (Adam's two moments, SGD's momentum): the memory check reads it

    def build(self, params, lr: float, weight_decay: float, momentum: float, fused: bool) -> torch.optim.Optimizer:
        kwargs: dict[str, Any] = {"lr": lr, "weight_decay": weight_decay}
        if self.momentum:
            kwargs["momentum"] = momentum
        if fused and self.fused:
            kwargs["fused"] = True
        from nnapp.system.compat import eager  # torch: imported where an optimiser is built, not with this table

        return eager(resolve(self.cls))(params, **kwargs)


@dataclass(frozen=True)
class ScheduleSpec:
    make: Callable[..., schedules.Schedule | None]  # (lr, total_steps, steps_per_epoch, epochs, cycle_momentum)
    help: str


@dataclass(frozen=True)
class ActivationSpec:
    cls: str  # dotted path of the torch.nn module
    help: str

    def build(self) -> torch.nn.Module:
        return resolve(self.cls)()


@dataclass(frozen=True)
class LossSpec:
    fn: str  # dotted path of fn(logits, labels, label_smoothing) -> loss
    help: str
    smoothing: bool = False  # takes label smoothing

    @property
    def function(self) -> Callable[..., torch.Tensor]:
        return resolve(self.fn)

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
        return self.function(logits, labels, smoothing)


@dataclass(frozen=True)
class DatasetSpec:
    """Everything nnapp knows of a data set of small images: who it is, what it holds, how to load it."""

    title: str
    identity: str  # part of every run key: change it when the files change, and old runs stop matching
    classes: tuple[str, ...]
    mean: float | tuple[float, ...]  # of the training pixels in [0, 1] (one per channel for colour); the
    std: float | tuple[float, ...]  # model's first layer normalises with these
    source: str  # "bundled:<IDX folder>", "torchvision:<class in torchvision.datasets>" or "own:<version>"
    image_size: int = 28
    train_size: int = 60_000
    test_size: int = 10_000
    channels: int = 1  # 1: grey, 3: colour (RGB)
    test_share: float = 0.0  # above 0: no test set of its own; each run holds this share out, by class and seed
    counts: tuple[int, ...] = ()  # images per class, where known (the data sets people make)

    @property
    def downloads(self) -> bool:
        return self.source.startswith("torchvision:")

    @property
    def own(self) -> bool:
        """Made by a person (nnapp.data): a version of their drawings or files."""
        return self.source.startswith("own:")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image as the network reads it."""
        return (self.channels, self.image_size, self.image_size)


OPTIMIZERS: Registry[OptimizerSpec] = Registry(
    "optimizer",
    {
        "sgd": OptimizerSpec("torch.optim.SGD", "SGD with momentum", 0.05, momentum=True, state=1),
        "adam": OptimizerSpec("torch.optim.Adam", "Adam", 3e-3),
        "adamw": OptimizerSpec("torch.optim.AdamW", "Adam with decoupled weight decay", 3e-3),
    },
)

SCHEDULES: Registry[ScheduleSpec] = Registry(
    "schedule",
    {
        "constant": ScheduleSpec(schedules.constant, "the same rate throughout"),
        "step": ScheduleSpec(schedules.step, "divided by 10 twice over the run"),
        "cosine": ScheduleSpec(schedules.cosine, "cosine decay from the rate to 0"),
        "onecycle": ScheduleSpec(schedules.one_cycle, "warm up to the rate over a quarter of the run, then anneal"),
    },
)

ACTIVATIONS: Registry[ActivationSpec] = Registry(
    "activation",
    {
        "relu": ActivationSpec("torch.nn.ReLU", "max(0, x)"),
        "tanh": ActivationSpec("torch.nn.Tanh", "hyperbolic tangent"),
        "sigmoid": ActivationSpec("torch.nn.Sigmoid", "logistic"),
        "gelu": ActivationSpec("torch.nn.GELU", "Gaussian error linear unit"),
        "leaky_relu": ActivationSpec("torch.nn.LeakyReLU", "ReLU with slope 0.01 below 0"),
    },
)

LOSSES: Registry[LossSpec] = Registry(
    "loss",
    {
        "cross_entropy": LossSpec("nnapp.engine.losses.cross_entropy", "cross-entropy on the logits", smoothing=True),
        "mse": LossSpec("nnapp.engine.losses.mse", "squared error of the softmax against one-hot targets"),
    },
)

DIGITS = tuple(str(i) for i in range(10))
DATASETS: Registry[DatasetSpec] = Registry(
    "data set",
    {
        "mnist": DatasetSpec("MNIST (bundled)", "mnist-idx-lecun-70000", DIGITS, 0.1307, 0.3081, "bundled:data/mnist"),
        "fashion_mnist": DatasetSpec(
            "Fashion-MNIST (downloaded)",
            "fashion-mnist-70000",
            ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"),
            0.2860,
            0.3530,
            "torchvision:FashionMNIST",
        ),
        "kmnist": DatasetSpec(
            "Kuzushiji-MNIST (downloaded)",
            "kmnist-70000",
            ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
            0.1918,
            0.3483,
            "torchvision:KMNIST",
        ),
        "cifar10": DatasetSpec(
            "CIFAR-10 (downloaded, colour)",
            "cifar10-60000",
            ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
            (0.4914, 0.4822, 0.4465),
            (0.2470, 0.2435, 0.2616),
            "torchvision:CIFAR10",
            image_size=32,
            train_size=50_000,
            channels=3,
        ),
    },
)
