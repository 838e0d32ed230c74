"""RunConfig: the one frozen description of a training run, its validation and its cache key."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, fields
from typing import Any

from nnapp.registry import ACTIVATIONS, DATASETS, LOSSES, OPTIMIZERS, SCHEDULES, DatasetSpec, Registry

# Bump when a change to the training code would change the result of an existing config:
# every cached run is then retrained instead of shown.
ENGINE_VERSION = "1"

# Choices that shape the code rather than name a component; the components are in nnapp.registry.
MODEL_KINDS = ("mlp", "cnn")
PRECISIONS = ("auto", "fp32", "bf16")
PADDINGS = ("same", "valid")


class ConfigError(ValueError):
    """A config that cannot be read; `problems` maps field name -> message."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


@dataclass(frozen=True)
class RunConfig:
    # data
    dataset: str = "mnist"  # a name in nnapp.registry.DATASETS
    val_fraction: float = 0.1  # share of the training images held out for validation
    train_subset: int = 0  # use only this many training images (0: all); for quick demos and tests
    # model
    model: str = "cnn"  # "mlp" or "cnn"
    conv: tuple[tuple[int, int, int], ...] = ((32, 3, 2), (64, 3, 2))  # CNN blocks: (channels, kernel, pool)
    padding: str = "same"  # CNN convolution padding: "same" keeps the map size, "valid" shrinks it
    hidden: tuple[int, ...] = (128,)  # hidden widths of the MLP, or of the CNN's head
    activation: str = "relu"
    dropout: float = 0.0  # after each hidden layer
    batch_norm: bool = False
    # optimisation
    optimizer: str = "adamw"
    lr: float = 1e-3  # the peak learning rate for onecycle
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0
    schedule: str = "onecycle"
    batch_size: int = 128
    epochs: int = 3
    loss: str = "cross_entropy"  # or "mse" on softmax probabilities against one-hot targets
    label_smoothing: float = 0.0  # cross-entropy only
    patience: int = 0  # early stopping: epochs without a better validation loss (0: off)
    augment: bool = False  # small random affine on each batch
    precision: str = "auto"  # auto picks bf16 where the device runs it faster
    seed: int = 0
    # fine-tuning
    init_from: str = ""  # key of a stored run whose weights this run starts from ("": fresh weights)
    personal: str = ""  # fingerprint of the personal drawings added to the training split ("": none)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build a config from plain JSON values; unknown keys and wrong types raise ConfigError."""
        if not isinstance(data, dict):
            raise ConfigError({"config": "expected a JSON object"})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError({k: "unknown field" for k in unknown})
        values, problems = {}, {}
        for name, value in data.items():
            try:
                values[name] = _coerce(name, value, known[name].default)
            except (TypeError, ValueError) as err:
                problems[name] = str(err)
        if problems:
            raise ConfigError(problems)
        return cls(**values)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def with_overrides(self, assignments: list[str]) -> RunConfig:
        """Apply `field=value` strings as the CLI's --set does."""
        data = self.to_dict()
        problems = {}
        for item in assignments:
            name, sep, text = item.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or not name:
                problems[item or "--set"] = "expected field=value"
                continue
            if name not in data:
                problems[name] = "unknown field"
                continue
            data[name] = parse_value(name, text.strip())
        if problems:
            raise ConfigError(problems)
        return RunConfig.from_dict(data)

    def validate(self) -> dict[str, str]:
        """Every problem with this config, by field name; empty when it can be trained."""
        p: dict[str, str] = {}
        for name, options in CHOICES.items():
            _choice(p, name, getattr(self, name), options)
        if not 0 < self.val_fraction < 0.5:
            p["val_fraction"] = "must be above 0 and below 0.5"
        if self.train_subset < 0:
            p["train_subset"] = "must be 0 (all) or a positive number of images"
        if not 0 <= self.dropout < 1:
            p["dropout"] = "must be at least 0 and below 1"
        if not self.lr > 0 or self.lr > 10:
            p["lr"] = "must be above 0 (and at most 10)"
        if not 0 <= self.momentum < 1:
            p["momentum"] = "must be at least 0 and below 1"
        if self.weight_decay < 0:
            p["weight_decay"] = "must not be negative"
        if not 0 <= self.label_smoothing < 1:
            p["label_smoothing"] = "must be at least 0 and below 1"
        if self.label_smoothing and self.loss in LOSSES and not LOSSES[self.loss].smoothing:
            p["label_smoothing"] = f"applies to {', '.join(n for n, s in LOSSES.items() if s.smoothing)} only"
        if not 1 <= self.epochs <= 1000:
            p["epochs"] = "must be between 1 and 1000"
        if self.patience < 0:
            p["patience"] = "must be 0 (off) or a number of epochs"
        if any(w < 1 or w > 8192 for w in self.hidden):
            p["hidden"] = "each width must be between 1 and 8192"
        if self.model == "mlp" and not self.hidden:
            p["hidden"] = "an MLP needs at least one hidden layer"
        if self.model == "cnn":
            problem = self._conv_problem()
            if problem:
                p["conv"] = problem
        train_images = self.train_images()
        if self.batch_size < 1:
            p["batch_size"] = "must be at least 1"
        elif train_images >= 1 and self.batch_size > train_images:
            p["batch_size"] = f"is larger than the training set ({train_images} images)"
        if self.train_subset and train_images < 1:
            p["train_subset"] = "leaves no training images after the validation split"
        return p

    def _conv_problem(self) -> str | None:
        if not self.conv:
            return "a CNN needs at least one conv block"
        size = self.data_spec().image_size
        for i, (channels, kernel, pool) in enumerate(self.conv, start=1):
            if not 1 <= channels <= 1024:
                return f"block {i}: channels must be between 1 and 1024"
            if kernel < 1 or kernel % 2 == 0:
                return f"block {i}: kernel must be an odd number (1, 3, 5, 7…)"
            if kernel > size:
                return f"block {i}: kernel {kernel} is bigger than the {size}×{size} feature map"
            if self.padding == "valid":
                size = size - kernel + 1
            if pool < 1:
                return f"block {i}: pool must be 1 (none) or more"
            if pool > size:
                return f"block {i}: pool {pool} is bigger than the {size}×{size} feature map"
            size //= pool
        return None

    def data_spec(self) -> DatasetSpec:
        """The data set's registry entry (MNIST's shape for a name that is not there: validate() names it)."""
        return DATASETS[self.dataset] if self.dataset in DATASETS else DATASETS["mnist"]

    def train_images(self) -> int:
        """How many images the training split holds after the validation share is taken."""
        total = self.train_subset or self.data_spec().train_size
        return total - max(1, round(total * self.val_fraction))

    def steps_per_epoch(self) -> int:
        return max(1, self.train_images() // max(self.batch_size, 1))

    def key(self) -> str:
        """Stable cache key: this config, the data set's identity and the engine version."""
        identity = DATASETS[self.dataset].identity if self.dataset in DATASETS else self.dataset
        payload = json.dumps(
            {"config": self.to_dict(), "data": identity, "engine": ENGINE_VERSION},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def describe(self) -> str:
        """A short human label, e.g. 'cnn 32-64 | adamw 1e-03 | 3 ep'."""
        if self.model == "cnn":
            arch = "cnn " + "-".join(str(c[0]) for c in self.conv)
        else:
            arch = "mlp " + "-".join(str(w) for w in self.hidden)
        return f"{self.dataset} {arch} | {self.optimizer} {self.lr:g} | {self.epochs} ep"


CHOICES: dict[str, tuple[str, ...] | Registry] = {
    "dataset": DATASETS,
    "model": MODEL_KINDS,
    "padding": PADDINGS,
    "activation": ACTIVATIONS,
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
    "loss": LOSSES,
    "precision": PRECISIONS,
}


def choices_help() -> str:
    """'dataset: mnist, fashion_mnist, kmnist; model: mlp, cnn; …' for the CLI's help."""
    return "; ".join(f"{name}: {', '.join(options)}" for name, options in CHOICES.items())


def _choice(problems: dict[str, str], name: str, value: str, options: tuple[str, ...] | Registry) -> None:
    if value not in options:
        problems[name] = f"unknown value {value!r}; choose from {', '.join(options)}"


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Turn a JSON value into the type of the field's default."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise TypeError("expected true or false")
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise TypeError("expected a whole number")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError("expected a number")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise TypeError("expected a string")
        return value
    if name == "hidden":
        if not isinstance(value, (list, tuple)) or not all(_is_int(v) for v in value):
            raise TypeError("expected a list of whole numbers, e.g. [128, 64]")
        return tuple(int(v) for v in value)
    if name == "conv":
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(b, (list, tuple)) and len(b) == 3 and all(_is_int(v) for v in b) for b in value
        )
        if not ok:
            raise TypeError("expected a list of [channels, kernel, pool] blocks, e.g. [[32, 3, 2]]")
        return tuple(tuple(int(v) for v in b) for b in value)
    raise TypeError(f"unsupported field {name}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_value(name: str, text: str) -> Any:
    """Read a --set value: JSON where it parses, with short forms for the layer fields.

    hidden=128,64   conv=32:3:2,64:3:2   augment=true   dataset=mnist
    """
    if name == "hidden" and text and all(part.strip().isdigit() for part in text.split(",")):
        return [int(part) for part in text.split(",")]
    if name == "conv" and ":" in text and not text.startswith("["):
        try:
            return [[int(v) for v in block.split(":")] for block in text.split(",")]
        except ValueError:
            return text
    if name in ("hidden", "conv") and text in ("", "none"):
        return []
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
