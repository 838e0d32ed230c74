"""What a sweep searches: fields and their ranges or lists, the sampler, the pruner, the objective.

The CLI's --param FIELD=SPEC and the Sweep page's inputs go through one parser. No optuna import here: the CLI
checks a sweep and prints its help without it.

    lr=1e-4:1e-1:log            a range searched on a log scale (whole numbers for integer fields)
    dropout=0:0.5               a range on a linear scale
    batch_size=64,128,256       a list of values
    hidden=64,128,256-128       a list of layer stacks, widths joined by '-' ('none': no hidden layer)
    conv=16:3:2-32:3:2,32:3:2   a list of conv stacks, channels:kernel:pool blocks joined by '-'
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
from dataclasses import dataclass, fields
from typing import Any

from nnapp.engine import checks, effects
from nnapp.engine.config import ConfigError, RunConfig, parse_value
from nnapp.engine.limits import estimate, memory_limit, size_text
from nnapp.engine.registry import Registry


@dataclass(frozen=True)
class SearchPart:
    build: str  # dotted path of build(spec: SweepSpec) -> the Optuna sampler or pruner
    help: str


@dataclass(frozen=True)
class Objective:
    direction: str  # "maximize" or "minimize", as Optuna names it
    title: str


SAMPLERS: Registry[SearchPart] = Registry(
    "sampler",
    {
        "grid": SearchPart("nnapp.sweep.study.grid_sampler", "every combination of the listed values, in a shuffled order"),
        "random": SearchPart("nnapp.sweep.study.random_sampler", "independent random draws"),
        "tpe": SearchPart(
            "nnapp.sweep.study.tpe_sampler", "Tree-structured Parzen Estimator: random at first, then near the best"
        ),
    },
)
PRUNERS: Registry[SearchPart] = Registry(
    "pruner",
    {
        "none": SearchPart("nnapp.sweep.study.no_pruner", "every trial trains all its epochs"),
        "median": SearchPart(
            "nnapp.sweep.study.median_pruner",
            "stop a trial whose score after an epoch is worse than the median of finished trials there",
        ),
        "asha": SearchPart(
            "nnapp.sweep.study.asha_pruner", "successive halving: after epochs 1, 3, 9… only the best third go on"
        ),
    },
)
OBJECTIVES = {
    "val_acc": Objective("maximize", "validation accuracy"),
    "val_loss": Objective("minimize", "validation loss"),
}
NOT_SEARCHED = ("dataset", "init_from", "personal")  # a sweep compares configs on one data set, from fresh weights
KINDS = {f.name: type(f.default) for f in fields(RunConfig) if f.name not in NOT_SEARCHED}
SEARCHABLE = tuple(KINDS)
# What the Sweep page offers when a field is picked: the usual range or list for it.
DEFAULT_RANGES = {
    "lr": "1e-4:1e-1:log",
    "weight_decay": "1e-5:1e-1:log",
    "batch_size": "64,128,256",
    "hidden": "64,128,256-128",
    "conv": "16:3:2-32:3:2,32:3:2-64:3:2",
    "dropout": "0:0.5",
    "epochs": "1,2,3",
    "label_smoothing": "0:0.2",
    "momentum": "0.8:0.99",
    "optimizer": "sgd,adam,adamw",
    "activation": "relu,gelu,tanh",
    "schedule": "constant,cosine,onecycle",
}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}\Z")  # \Z, not $: "name\n" is not a name
MAX_TRIALS, MAX_PARALLEL = 1000, 64  # MAX_PARALLEL bounds a Ray cluster's; on this machine its CPUs and memory do
MAX_CHOICES = 1000  # values in one list
MAX_GRID = 100_000  # configs in a grid: Optuna builds every one in memory when the sweep starts
MAX_SEED = 2**32 - 1  # Optuna's samplers take seeds from 0 to this
MAX_CORNERS = 1024  # configs looked at to tell whether a searched field changes anything (more: it is taken to)


class SweepError(ConfigError):
    """A sweep that cannot run; `problems` maps the part at fault (e.g. '--param lr=0:1:log') -> message."""


@dataclass(frozen=True)
class Param:
    """One searched field: a range (low, high, log) or a list of choices, as Optuna stores them."""

    field: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()  # numbers, true/false, names; layer stacks as written ('256-128')
    written: str = ""  # the spec as the user wrote it, named in messages

    @property
    def text(self) -> str:
        if self.written:
            return self.written
        if self.low is None:
            return f"{self.field}=" + ",".join(json.dumps(c) if isinstance(c, bool) else str(c) for c in self.choices)
        return f"{self.field}={self.low:g}:{self.high:g}" + (":log" if self.log else "")

    def suggest(self, trial) -> Any:
        """This field's value for an Optuna trial (ask-and-tell: the driver calls it right after study.ask())."""
        if self.low is None:
            return trial.suggest_categorical(self.field, list(self.choices))
        if KINDS[self.field] is int:
            return trial.suggest_int(self.field, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.field, self.low, self.high, log=self.log)

    def values(self) -> list[Any]:
        """What to check against the base config: the choices, or both ends of the range."""
        return list(self.choices) if self.low is None else [self.low, self.high]


def config_value(field: str, value: Any) -> Any:
    """A trial's value as RunConfig.from_dict takes it: layer stacks become lists."""
    if field == "hidden":
        return [] if value == "none" else [int(w) for w in str(value).split("-")]
    if field == "conv":
        return [[int(v) for v in block.split(":")] for block in str(value).split("-")]
    return value


def parse_param(text: str) -> Param:
    """'lr=1e-4:1e-1:log' -> Param; a bad spec raises SweepError naming it."""
    name, sep, spec = text.partition("=")
    name, spec = name.strip().replace("-", "_"), spec.strip()
    try:
        if not sep or not name or not spec:
            raise ValueError("expected FIELD=LOW:HIGH[:log] or FIELD=A,B,C")
        if name in NOT_SEARCHED:
            raise ValueError(f"{name} cannot be searched: a sweep compares configs on one data set from fresh weights")
        if name not in KINDS:
            raise ValueError(f"unknown field {name!r}; choose from {', '.join(SEARCHABLE)}")
        kind = KINDS[name]
        if kind in (int, float) and ":" in spec:
            return dataclasses.replace(_range(name, kind, spec), written=text.strip())
        return Param(name, choices=_choices(name, kind, spec), written=text.strip())
    except ValueError as err:
        raise SweepError({f"--param {text}": str(err)}) from None


def _range(name: str, kind: type, spec: str) -> Param:
    parts = spec.split(":")
    log = len(parts) == 3 and parts[2] == "log"
    if len(parts) != 2 + log:
        raise ValueError("a range is LOW:HIGH or LOW:HIGH:log")
    low, high = (_number(kind, p) for p in parts[:2])
    if not low < high:
        raise ValueError(f"the low end {parts[0]} must be below the high end {parts[1]}")
    if log and low <= 0:
        raise ValueError("a log scale needs a low end above 0")
    return Param(name, low, high, log)


def _number(kind: type, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if kind is int and not value.is_integer():
        raise ValueError(f"{text!r} is not a whole number")
    return int(value) if kind is int else value


def _choices(name: str, kind: type, spec: str) -> tuple[Any, ...]:
    tokens = [t.strip() for t in spec.split(",")]
    if len(tokens) > MAX_CHOICES:
        raise ValueError(f"a list of {len(tokens):,} values; at most {MAX_CHOICES:,}")
    if any(not t for t in tokens):
        raise ValueError("an empty value in the list")
    if len(set(tokens)) < len(tokens):
        raise ValueError("a value is listed twice")
    if name == "hidden":
        bad = [t for t in tokens if t != "none" and not re.fullmatch(r"\d+(-\d+)*", t)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a layer stack: widths joined by '-', e.g. 256-128")
        return tuple(tokens)
    if name == "conv":
        bad = [t for t in tokens if not re.fullmatch(r"\d+:\d+:\d+(-\d+:\d+:\d+)*", t)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a conv stack: channels:kernel:pool blocks joined by '-'")
        return tuple(tokens)
    if kind in (int, float):
        return tuple(_number(kind, t) for t in tokens)
    if kind is bool:
        values = [parse_value(name, t.lower()) for t in tokens]
        if not all(isinstance(v, bool) for v in values):
            raise ValueError("expected true and/or false")
        return tuple(values)
    return tuple(tokens)


@dataclass(frozen=True)
class SweepSpec:
    """One sweep: a base config, the fields searched around it and how. Saved beside its Optuna journal."""

    name: str
    base: RunConfig
    params: tuple[Param, ...]
    trials: int = 20  # how many trials count towards the end (cancelled and interrupted ones are asked again)
    parallel: int = 1  # trials training at once
    sampler: str = "tpe"
    pruner: str = "none"
    objective: str = "val_acc"
    seed: int = 0  # the sampler's: the same spec asks for the same configs (a repeat sweep is cache hits)
    ray: str = ""  # a Ray cluster's address; "": trials run as local job processes

    @property
    def key(self) -> str:
        return f"sweep:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**data, "base": self.base.to_dict(), "params": [p.text for p in self.params]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepSpec:
        params = tuple(parse_param(text) for text in data["params"])
        return cls(**{**data, "base": RunConfig.from_dict(data["base"]), "params": params})

    def config(self, values: dict[str, Any]) -> RunConfig:
        """The run a trial's values describe (not yet validated: a combination can still be invalid)."""
        data = self.base.to_dict()
        data.update({name: config_value(name, value) for name, value in values.items()})
        return RunConfig.from_dict(data)

    def describe(self) -> str:
        """'tpe sampler, median pruner, 2 at a time on this machine'"""
        pruner = "no pruner" if self.pruner == "none" else f"{self.pruner} pruner"
        where = f"on the Ray cluster at {self.ray}" if self.ray else "on this machine"
        return f"{self.sampler} sampler, {pruner}, {self.parallel} at a time {where}"

    def grid_size(self) -> int | None:
        """How many configs the grid holds (None for other samplers)."""
        if self.sampler != "grid":
            return None
        size = 1
        for p in self.params:
            size *= len(p.choices)
        return size

    def problems(self) -> dict[str, str]:
        """Everything that stops this sweep from running, by the part at fault."""
        p: dict[str, str] = {}
        if not NAME.match(self.name):
            p["--name"] = "use letters, digits, '.', '_' and '-' (at most 80, starting with a letter or digit)"
        base = checks.check(self.base).problems
        p.update({f"--set {k}": v for k, v in base.items()})
        if self.base.init_from or self.base.personal:
            p["--config"] = "a sweep trains from fresh weights on the data set alone (no init_from, no personal drawings)"
        if not self.params:
            p["--param"] = "name at least one field to search, e.g. --param lr=1e-4:1e-1:log"
        seen = set()
        for param in self.params:
            if param.field in seen:
                p[f"--param {param.text}"] = f"{param.field} is searched twice"
            seen.add(param.field)
            problem = self._param_problem(param) or (None if base else self._inert_problem(param))
            if problem:
                p[f"--param {param.text}"] = problem
        for name, table, value in (("--sampler", SAMPLERS, self.sampler), ("--pruner", PRUNERS, self.pruner)):
            if value not in table:
                p[name] = f"unknown {table.kind} {value!r}; choose from {', '.join(table)}"
        if self.objective not in OBJECTIVES:
            p["--objective"] = f"unknown objective {self.objective!r}; choose from {', '.join(OBJECTIVES)}"
        p.update(self._size_problems())
        return p

    def _size_problems(self) -> dict[str, str]:
        """The grid, the trials, the trials at once (here: against this machine's CPUs and memory) and the seed."""
        p: dict[str, str] = {}
        if self.sampler == "grid" and any(param.low is not None for param in self.params):
            p["--sampler"] = "grid needs a list of values for every field (e.g. lr=1e-3,1e-2), not a range"
        elif (self.grid_size() or 0) > MAX_GRID:
            p["--sampler"] = (
                f"the grid holds {self.grid_size():,} configs, more than the {MAX_GRID:,} a sweep may hold: "
                "list fewer values, or use the tpe or random sampler"
            )
        if not 1 <= self.trials <= MAX_TRIALS:
            p["--trials"] = f"must be between 1 and {MAX_TRIALS}"
        if not 1 <= self.parallel <= MAX_PARALLEL:
            p["--parallel"] = f"must be between 1 and {MAX_PARALLEL}"
        elif not self.ray:
            cap, why = self.parallel_cap()
            if self.parallel > cap:
                p["--parallel"] = f"at most {cap} trial{'s' * (cap > 1)} at once on this machine: {why}"
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            p["--seed"] = f"must be a whole number from 0 to {MAX_SEED:,} (the seeds Optuna's samplers take)"
        return p

    def parallel_cap(self) -> tuple[int, str]:
        """How many trials may train at once on this machine, and what sets that: a trial is a process with
        a share of the CPUs, and needs the memory the biggest config searched needs (nnapp.engine.limits)."""
        from nnapp.engine.device import cpu_count  # torch: needed only where trials run locally

        cpus = cpu_count()
        try:
            limit = memory_limit()
        except ValueError:  # the base config's check names it
            limit = None
        need = max((estimate(c).total for c in self.corner_configs()), default=0)
        if limit is not None and need and limit.bytes // need < cpus:
            fits = max(1, limit.bytes // need)
            return fits, f"each trial may need {size_text(need)} and {size_text(limit.bytes)} is allowed ({limit.source})"
        return cpus, f"it has {cpus} CPU{'s' * (cpus > 1)}, one or more for each trial"

    def corners(self, skip: str = "") -> list[dict[str, Any]] | None:
        """Every combination of the searched values, a range by its two ends, leaving out `skip`'s field;
        None when there are more than MAX_CORNERS."""
        lists = [[(p.field, v) for v in p.values()] for p in self.params if p.field != skip]
        if math.prod(len(values) for values in lists) > MAX_CORNERS:
            return None
        return [dict(combination) for combination in itertools.product(*lists)]

    def corner_configs(self) -> list[RunConfig]:
        """The valid configs at the corners of the search (or, when there are too many, each value around the base)."""
        corners = self.corners()
        if corners is None:
            corners = [{}, *({p.field: v} for p in self.params for v in p.values())]
        return [c for c in (self.valid(values) for values in corners) if c is not None]

    def valid(self, values: dict[str, Any]) -> RunConfig | None:
        """The config these values describe, when it has no problem of its own."""
        try:
            config = self.config(values)
        except ConfigError:
            return None
        return None if config.validate() else config

    def _param_problem(self, param: Param) -> str | None:
        """The first value of `param` that the base config cannot take, explained."""
        for value in param.values():
            try:
                problem = checks.check(self.config({param.field: value})).problems.get(param.field)
            except ConfigError as err:
                problem = str(err)
            if problem:
                shown = f"{value:g}" if isinstance(value, float) else json.dumps(value) if isinstance(value, bool) else value
                return f"{param.field}={shown}: {problem}"
        return None

    def _inert_problem(self, param: Param) -> str | None:
        """`param` when none of its values changes what trains (nnapp.engine.effects), whatever the other
        searched fields are: its trials would train one network under different names."""
        corners = self.corners(skip=param.field)
        if len(param.values()) < 2 or corners is None or len(corners) * len(param.values()) > MAX_CORNERS:
            return None
        reasons: dict[str, None] = {}
        for corner in corners:
            configs = [c for c in (self.valid({**corner, param.field: v}) for v in param.values()) if c is not None]
            if len({effects.trained(c) for c in configs}) > 1:
                return None
            reasons.update(dict.fromkeys(effects.why_alike(c, param.field) for c in configs))
        return (
            f"{param.field} changes nothing that trains here: {'; '.join(list(reasons)[:3]) or 'no value makes a valid config'}"
        )


def check(spec: SweepSpec) -> SweepSpec:
    problems = spec.problems()
    if problems:
        raise SweepError(problems)
    return spec
