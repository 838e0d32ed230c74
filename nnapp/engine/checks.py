"""A config checked once, for a launch: its own fields (RunConfig.validate) and its size on this machine.

The CLI, the Train page and a sweep's driver each check a config once and hand the Checked on; the job
manager and the trainer take a Checked and do not check again. A stored or imported run's config is read
with RunConfig.validate alone: this machine's limits do not decide whether an old run can be shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nnapp.engine.arch import plan
from nnapp.engine.config import ConfigError, RunConfig
from nnapp.engine.limits import size_problems

if TYPE_CHECKING:
    from nnapp.engine.records import Run


@dataclass(frozen=True)
class Checked:
    """A config and every problem found with it, by field; it can be trained when there are none."""

    config: RunConfig
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def require(self) -> RunConfig:
        """The config, or ConfigError with its problems."""
        if self.problems:
            raise ConfigError(self.problems)
        return self.config


Runs = Callable[[str], "Run | None"]  # the stored run of a key (Store.get): what init_from names is looked up there


def check(config: RunConfig, runs: Runs | None = None) -> Checked:
    """Every problem with `config`: each field's own, then (when those pass) whether its training can run at
    all (batch norm on one value), its network's size and the memory its training needs against this machine
    (nnapp.engine.limits), and, given `runs`, whether the run init_from names is there with a network this
    one can start from."""
    problems = config.validate()
    if not problems:
        problems = training_problems(config) or size_problems(config)
    if not problems and config.init_from and runs is not None:
        problems = parent_problems(config, runs(config.init_from))
    return Checked(config, problems)


def checked(config: RunConfig, runs: Runs | None = None) -> Checked:
    """check(config, runs), raising ConfigError when it has problems."""
    result = check(config, runs)
    result.require()
    return result


def trainable(config: Checked | RunConfig, runs: Runs | None = None) -> RunConfig:
    """The config to train: a Checked's own (checked once, by whoever made it), or a RunConfig checked now;
    ConfigError when it has problems."""
    return (config if isinstance(config, Checked) else check(config, runs)).require()


def training_problems(config: RunConfig) -> dict[str, str]:
    """Fields that are valid and fit this machine, but with which a training step cannot run."""
    if config.batch_norm and config.batch_size == 1:
        single = [
            layer
            for layer in plan(config)
            if layer.kind == "batchnorm1d" or (layer.kind == "batchnorm2d" and layer.shape[1:] == (1, 1))
        ]
        if single:
            return {
                "batch_size": "batch norm needs more than one value per channel in a batch, and a batch of 1 gives "
                f"{single[0].label} one: use a batch of at least 2, or turn batch norm off"
            }
    return {}


def parent_problems(config: RunConfig, parent: Run | None) -> dict[str, str]:
    """Why the run `config.init_from` names cannot be where this training starts: missing, without weights,
    or with a network whose weights do not fit this one's (another layer, width, data set or batch norm)."""
    key = config.init_from
    if parent is None:
        return {"init_from": f"there is no run {key} in this store to start from"}
    if not parent.has_weights() or parent.config is None:
        return {"init_from": f"run {key} has no weights to start from (it is {parent.status})"}
    mine, theirs = _weighted_layers(config), _weighted_layers(parent.config)
    for i, (a, b) in enumerate(zip(mine, theirs, strict=False), start=1):
        if a != b:
            return {"init_from": f"run {key}'s network differs from this one at its layer {i}: {b[1]} there, {a[1]} here"}
    if len(mine) != len(theirs):
        return {"init_from": f"run {key}'s network has {len(theirs)} layers with weights, this one {len(mine)}"}
    return {}


def _weighted_layers(config: RunConfig) -> list[tuple[str, str]]:
    """The layers that hold weights or statistics, as (kind and arguments, label): equal lists load each other's weights."""
    return [
        (repr(layer), layer.label)
        for layer in plan(config, len(config.data_spec().classes))
        if layer.params or layer.kind == "normalize"
    ]
