"""What a sweep asks never depends on timing: the same sweep, its trials ending in other orders, asks for the same
configs and prunes them at the same epochs; a repeat replays every trial; a stopped sweep resumed asks for what
it would have asked unstopped. Trials here train without torch (Simulated), so many timings are cheap to try."""

import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnapp.engine.config import RunConfig
from nnapp.engine.states import ClaimState, Status
from nnapp.jobs.handle import TaskHandle
from nnapp.jobs.manager import Submission
from nnapp.store.store import Store
from nnapp.sweep import driver
from nnapp.sweep.driver import Driver
from nnapp.sweep.spec import SweepSpec, parse_param
from nnapp.sweep.study import read_study, slot_of, trial_run

BASE = RunConfig(model="mlp", hidden=(32,), train_subset=600, batch_size=32, epochs=3, optimizer="adam", schedule="constant")
PARAMS = ("lr=1e-4:1:log", "batch_size=16,32,64")
GRID = ("lr=1e-4,1e-3,1e-2,1e-1,1", "batch_size=16,32,64")


def score(config: RunConfig, epoch: int) -> float:
    """A made-up validation accuracy: best near lr=3e-3, a little better each epoch."""
    distance = abs(math.log10(config.lr) + 2.5) / 4 + abs(math.log2(config.batch_size) - 5) / 20
    return max(0.05, 1 - distance) * (1 - 0.5**epoch)


class Simulated:
    """An executor whose trials write an epoch row (scored by `score`) each time a seeded shuffle picks them,
    so every `timing` seed ends them in another order; after each epoch but the last a trial waits for the
    driver's pruning verdict, as a job process does. Its runs are ordinary rows of the store."""

    def __init__(self, store: Store, timing: int):
        self.store, self.rng = store, random.Random(timing)
        self.running: dict[str, tuple[RunConfig, int]] = {}  # key -> (config, epochs written)
        self.verdicts: dict[tuple[str, int], bool] = {}
        self.pruning = False

    def submit(self, checked, pruning: bool) -> Submission:
        claim = self.store.claim(checked.require())
        if claim.state != ClaimState.CLAIMED:
            return Submission(claim.key, claim.state)
        self.pruning = pruning
        self.store.set_status(claim.key, Status.RUNNING)
        self.running[claim.key] = (checked.config, 0)
        return Submission(claim.key, ClaimState.QUEUED)

    def pump(self) -> None:
        movable = [key for key, (config, done) in self.running.items() if self.answered(key, done)]
        if not movable or self.rng.random() < 0.3:  # now and then nothing moves
            return
        key = self.rng.choice(movable)
        config, done = self.running[key]
        if done and self.verdicts.get((key, done)):
            del self.running[key]
            self.store.set_status(key, Status.PRUNED, message=f"pruned after epoch {done}")
            return
        epoch, value = done + 1, score(config, done + 1)
        row = {"epoch": epoch, "train_loss": 1 - value, "train_acc": value, "val_loss": 1 - value, "val_acc": value}
        progress = {"step": epoch, "total_steps": config.epochs, "epoch": epoch, "epochs": config.epochs, "phase": "train"}
        self.store.set_progress(key, progress, [], {**row, "lr": config.lr, "seconds": 0.1})
        self.running[key] = (config, epoch)
        if epoch == config.epochs:
            del self.running[key]
            self.store.set_status(key, Status.DONE, message="")

    def answered(self, key: str, done: int) -> bool:
        return not self.pruning or done == 0 or (key, done) in self.verdicts

    def is_active(self, key: str) -> bool:
        return key in self.running

    def verdict(self, key: str, epoch: int, prune: bool) -> None:
        self.verdicts[(key, epoch)] = prune

    def cancel(self, key: str) -> None:
        self.running.pop(key, None)
        self.store.set_status(key, Status.CANCELLED, message="cancelled")

    def node(self, key: str) -> str | None:
        return None

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def no_wait(monkeypatch):
    monkeypatch.setattr(driver, "POLL_S", 0)


def sweep(home, timing: int, stop_after: int | None = None, name: str = "s", **kwargs) -> list[tuple]:
    """Run the sweep (stopped once `stop_after` trials have been told, if given) and return its trials by
    position: (position, values, how it ended, the epoch it was pruned after, where it came from)."""
    store = Store(home)
    spec = SweepSpec(name, BASE, tuple(parse_param(p) for p in kwargs.pop("params", PARAMS)), **kwargs)
    handle = TaskHandle(store, spec.key, lambda: stop_after is not None and len(read_study(home, name).trials) > stop_after)
    Driver(spec, store, Simulated(store, timing), handle).run()
    return ended(home, name)


def ended(home, name: str) -> list[tuple]:
    trials = [t for t in read_study(home, name).trials if t.state.is_finished() and trial_run(t)["status"] != "cancelled"]
    return sorted((slot_of(t), t.params, t.state.name, trial_run(t).get("pruned_at"), trial_run(t)["source"]) for t in trials)


def asked(rows: list[tuple]) -> list[tuple]:
    return [row[:4] for row in rows]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    timings=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)),
    kind=st.sampled_from([("tpe", "none"), ("tpe", "median"), ("random", "asha"), ("grid", "median"), ("tpe", "asha")]),
    parallel=st.integers(1, 3),
)
def test_the_same_sweep_asks_the_same_whichever_trial_ends_first(tmp_path_factory, timings, kind, parallel):
    sampler, pruner = kind
    options = dict(trials=8, parallel=parallel, sampler=sampler, pruner=pruner, params=GRID if sampler == "grid" else PARAMS)
    first = sweep(tmp_path_factory.mktemp("a"), timings[0], **options)
    second = sweep(tmp_path_factory.mktemp("b"), timings[1], **options)
    assert len(first) == 8 and asked(first) == asked(second)
    assert [row[0] for row in first] == list(range(8)) and all(row[4] == "trained" for row in first)


def test_a_repeat_is_replayed_and_a_stopped_sweep_resumes_as_if_never_stopped(tmp_path):
    options = dict(trials=9, parallel=2, sampler="tpe", pruner="median")
    whole = sweep(tmp_path / "whole", 1, **options)
    assert {row[2] for row in whole} == {"COMPLETE", "PRUNED"}  # the pruner had something to prune
    again = sweep(tmp_path / "whole", 2, name="again", **options)
    assert asked(again) == asked(whole) and {row[4] for row in again} == {"cached"}  # nothing trained again

    for stop_after in (2, 5):
        home = tmp_path / f"stopped-{stop_after}"
        sweep(home, 3, stop_after=stop_after, **options)
        assert len(ended(home, "s")) < 9  # stopped part of the way
        resumed = sweep(home, 4, **options)
        assert asked(resumed) == asked(whole)
