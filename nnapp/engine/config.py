"""RunConfig: the one frozen description of a training run, its validation and its cache key."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, fields
from typing import Any

from nnapp.engine import datasets
from nnapp.engine.fields import canonical, coerce, field_problems
from nnapp.engine.fields import parse_value as parse_value  # the CLI's --set reader, long imported from here
from nnapp.engine.registry import ACTIVATIONS, DATASETS, LOSSES, OPTIMIZERS, SCHEDULES, DatasetSpec, Registry

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
    dataset: str = "mnist"  # a name in nnapp.registry.DATASETS, or NAME@VERSION of a data set of yours
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

    def __post_init__(self) -> None:
        """One config, one spelling: a float field's whole number or -0.0 becomes that float (0.0), layer lists
        become tuples, so equal configs are equal and have one key however they were written."""
        for f in fields(self):
            value = getattr(self, f.name)
            same = canonical(value, f.default)
            if same is not value:
                object.__setattr__(self, f.name, same)

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
        unknown = sorted(str(k) for k in set(data) - set(known))
        if unknown:
            raise ConfigError({k[:40]: "unknown field" for k in unknown[:10]})
        values, problems = {}, {}
        for name, value in data.items():
            try:
                values[name] = coerce(name, value, known[name].default)
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
                problems[item[:40] or "--set"] = "expected field=value"
            elif name not in data:
                problems[name[:40]] = "unknown field"
            else:
                try:
                    data[name] = parse_value(name, text.strip())
                except ValueError as err:
                    problems[name] = str(err)
        if problems:
            raise ConfigError(problems)
        return RunConfig.from_dict(data)

    def validate(self) -> dict[str, str]:
        """Every problem with this config's fields, alone and together, by field name; empty when it is sound.

        What this machine can train (the network's size, its memory) is nnapp.engine.checks.check's part.
        """
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        p = field_problems(values, CHOICES)
        self._combined_problems(p)
        return p

    def _combined_problems(self, p: dict[str, str]) -> None:
        """Fields that are fine alone but not together; each check runs once its fields passed their own."""

        def ok(*names: str) -> bool:
            return not any(n in p for n in names)

        if ok("loss", "label_smoothing") and self.label_smoothing and not LOSSES[self.loss].smoothing:
            p["label_smoothing"] = f"applies to {', '.join(n for n, s in LOSSES.items() if s.smoothing)} only"
        if ok("model", "hidden") and self.model == "mlp" and not self.hidden:
            p["hidden"] = "an MLP needs at least one hidden layer"
        spec = self.data_spec()
        if ok("dataset") and spec.own and (problem := _too_few(spec)):
            p["dataset"] = problem
        if ok("model", "conv", "padding", "dataset") and self.model == "cnn" and (problem := self._conv_problem()):
            p["conv"] = problem
        if ok("dataset", "train_subset") and self.train_subset > spec.train_size:
            p["train_subset"] = f"is more than the {spec.train_size:,} training images of {spec.title}"
        if not ok("dataset", "train_subset", "val_fraction"):
            return
        train_images = self.train_images()
        if train_images < 1:
            p["train_subset"] = "leaves no training images after the validation split"
        elif ok("batch_size") and self.batch_size > train_images:
            p["batch_size"] = f"is larger than the training set ({train_images} images)"

    def _conv_problem(self) -> str | None:
        if not self.conv:
            return "a CNN needs at least one conv block"
        size = self.data_spec().image_size
        for i, (_, kernel, pool) in enumerate(self.conv, start=1):
            if kernel > size:
                return f"block {i}: kernel {kernel} is bigger than the {size}×{size} feature map"
            if self.padding == "valid":
                size = size - kernel + 1
            if pool > size:
                return f"block {i}: pool {pool} is bigger than the {size}×{size} feature map"
            size //= pool
        return None

    def data_spec(self) -> DatasetSpec:
        """The data set's spec (MNIST's shape for a name that is not known: validate() names it)."""
        return datasets.find(self.dataset) or DATASETS["mnist"]

    def train_images(self) -> int:
        """How many images the training split holds after the validation share is taken."""
        total = self.train_subset or self.data_spec().train_size
        return total - max(1, round(total * self.val_fraction))

    def steps_per_epoch(self) -> int:
        return max(1, self.train_images() // max(self.batch_size, 1))

    def key(self) -> str:
        """Stable cache key: this config, the data set's identity and the engine version."""
        found = datasets.find(self.dataset)
        identity = found.identity if found is not None else self.dataset
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
        more = " (continued)" if self.init_from and not self.personal else ""
        return f"{datasets.base_name(self.dataset)} {arch} | {self.optimizer} {self.lr:g} | {self.epochs} ep{more}"


def _too_few(spec: DatasetSpec) -> str | None:
    """Why a data set of yours cannot train yet: a class with too few examples to share out."""
    short = [(name, n) for name, n in zip(spec.classes, spec.counts, strict=True) if n < datasets.MIN_PER_CLASS]
    if not short:
        return None
    name, n = short[0]
    more = f" (and {len(short) - 1} more)" if len(short) > 1 else ""
    return (
        f"class {name[:40]!r} has {n} examples{more}; each class needs at least {datasets.MIN_PER_CLASS}, "
        "so that some are left to learn from after validation and test take theirs"
    )


class DataSetNames:
    """What `dataset` takes: a registry name, or NAME@VERSION of a data set of yours this process knows.
    Iterated (for messages and help), the registry's names and where yours are listed."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and datasets.find(name) is not None

    def __iter__(self):
        return iter([*DATASETS, "a data set of yours (python -m nnapp data list)"])


CHOICES: dict[str, tuple[str, ...] | Registry | DataSetNames] = {
    "dataset": DataSetNames(),
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
