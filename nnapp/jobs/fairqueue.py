"""The job manager's queue: people served in turn (round-robin between owners), first-come within one owner.

A person who queues ten runs gets every other turn, not the next ten: the owner whose last turn is oldest goes
first (someone never served yet before anyone), and an owner with work running elsewhere (a sweep's trials,
counted from the store) waits behind those with none. Estimated starts add up what is ahead of a job.
"""

from __future__ import annotations

import functools
import itertools
import statistics
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nnapp.engine.states import TaskKind

if TYPE_CHECKING:
    from nnapp.store.store import Store

TASK_SECONDS = 15.0  # a guess for a task's length (a not-a-digit check, a t-SNE map): they are not timed ahead
START_SECONDS = 2.0  # a training's own set-up, validation and test beyond its steps


class FairQueue:
    """Jobs waiting (anything with `owner`), served in turn between owners, first-come within one."""

    def __init__(self):
        self._waiting: dict[str, deque] = {}
        self._last_turn: dict[str, int] = {}  # owner -> number of their latest turn
        self._turns = itertools.count(1)

    def __repr__(self) -> str:
        return f"FairQueue({ {o: len(q) for o, q in self._waiting.items()} })"

    def __len__(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def __iter__(self) -> Iterator:
        return iter(self.order())

    def append(self, job: Any) -> None:
        self._waiting.setdefault(job.owner, deque()).append(job)

    def remove(self, job: Any) -> None:
        jobs = self._waiting[job.owner]
        jobs.remove(job)
        if not jobs:
            del self._waiting[job.owner]

    def clear(self) -> list:
        jobs = self.order()
        self._waiting.clear()
        return jobs

    def _next_owner(self, waiting: Mapping[str, deque], last: Mapping[str, int], busy: Mapping[str, int]) -> str:
        return min(waiting, key=lambda o: (busy.get(o, 0), last.get(o, 0), waiting[o][0].seq))

    def pop(self, busy: Mapping[str, int] | None = None) -> Any:
        """The next job: the first of the owner whose turn it is (see the module's docstring)."""
        owner = self._next_owner(self._waiting, self._last_turn, busy or {})
        self._last_turn[owner] = next(self._turns)
        job = self._waiting[owner][0]
        self.remove(job)
        return job

    def order(self, busy: Mapping[str, int] | None = None) -> list:
        """Every waiting job in the order they would be served if nobody queued anything more."""
        waiting = {o: deque(q) for o, q in self._waiting.items()}
        last, turn, out = dict(self._last_turn), max(self._last_turn.values(), default=0), []
        while waiting:
            owner = self._next_owner(waiting, last, busy or {})
            turn += 1
            last[owner] = turn
            out.append(waiting[owner].popleft())
            if not waiting[owner]:
                del waiting[owner]
        return out


@dataclass(frozen=True)
class QueueEntry:
    """One job as the queue shows it: running (position 0) or waiting (1, 2, ...), with an estimated start."""

    key: str
    kind: str
    owner: str
    position: int
    starts_in: float | None  # seconds from now; 0 while running; None where nothing ahead can be estimated
    label: str  # what it is, in a few words


class Estimates:
    """How long jobs are likely to take, from the store's finished runs (read once)."""

    def __init__(self, store: Store):
        self.store = store

    def __repr__(self) -> str:
        return f"Estimates({self.store!r})"

    @functools.cached_property
    def finished(self) -> list:
        """The latest finished runs, read once and only when a length has to be guessed."""
        return [r for r in self.store.runs()[:200] if r.is_finished() and r.train_seconds and r.config is not None]

    def left(self, kind: str, key: str) -> float | None:
        """How long a running job has left: a training's ETA from its progress; a task's guess."""
        if kind != TaskKind.TRAIN:
            return TASK_SECONDS
        run = self.store.get(key)
        eta = (run.progress or {}).get("eta") if run is not None else None
        return eta if eta is not None else self.length(kind, run.config if run is not None else None)

    def length(self, kind: str, config) -> float | None:
        """A job's likely length: a training's images × epochs at the seconds per image of finished runs of the
        same network (else of the same kind of model, else of any); None before any run has finished."""
        if kind != TaskKind.TRAIN:
            return TASK_SECONDS
        if config is None:
            return None
        same, similar, every = [], [], []
        for run in self.finished:
            rate = run.train_seconds / max(_images(run.config), 1)
            every.append(rate)
            if run.config.model == config.model:
                similar.append(rate)
                if (run.config.conv, run.config.hidden) == (config.conv, config.hidden):
                    same.append(rate)
        if not every:
            return None
        return START_SECONDS + statistics.median(same or similar or every) * _images(config)

    def starts(self, waiting: list[tuple[str, str, str, Any]], running: list[float | None]) -> list[QueueEntry]:
        """A QueueEntry for each waiting job (key, kind, owner, config or None) in service order, the first
        starting when the soonest running job ends (`running`: the seconds each has left)."""
        known = [s for s in running if s is not None]
        clock = min(known) if known else (None if running else 0.0)
        out = []
        for position, (key, kind, owner, config) in enumerate(waiting, start=1):
            out.append(QueueEntry(key, kind, owner, position, clock, describe(kind, config)))
            length = self.length(kind, config)
            clock = None if clock is None or length is None else clock + length
        return out


def _images(config) -> int:
    return config.steps_per_epoch() * config.batch_size * config.epochs


def describe(kind: str, config) -> str:
    if kind == TaskKind.TRAIN and config is not None:
        return config.describe()
    return str(kind).replace("_", " ")
