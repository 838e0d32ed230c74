"""A config checked once, for a launch: its own fields (RunConfig.validate) and its size on this machine.

The CLI, the Train page and a sweep's driver each check a config once and hand the Checked on; the job
manager and the trainer take a Checked and do not check again. A stored or imported run's config is read
with RunConfig.validate alone: this machine's limits do not decide whether an old run can be shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nnapp.engine.config import ConfigError, RunConfig
from nnapp.engine.limits import size_problems


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


def check(config: RunConfig) -> Checked:
    """Every problem with `config`: each field's own, then (when those pass) its network's size and the
    memory its training needs against this machine (nnapp.engine.limits)."""
    problems = config.validate()
    if not problems:
        problems = size_problems(config)
    return Checked(config, problems)


def checked(config: RunConfig) -> Checked:
    """check(config), raising ConfigError when it has problems."""
    result = check(config)
    result.require()
    return result


def trainable(config: Checked | RunConfig) -> RunConfig:
    """The config to train: a Checked's own (checked once, by whoever made it), or a RunConfig checked now;
    ConfigError when it has problems."""
    return (config if isinstance(config, Checked) else check(config)).require()
