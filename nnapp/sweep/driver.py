"""One driver per sweep: Optuna's ask-and-tell over ordinary runs, trials on local job processes or a Ray cluster.

    ask in the trial's view (nnapp.sweep.view) -> a RunConfig -> the store's claim: finished before -> replayed
    to Optuna, nothing trains; trained by another process -> followed; else trained by the executor -> each
    epoch's validation row reported and, with a pruner, answered in the view -> the run's end told to Optuna

The driver alone writes the sweep's state, an Optuna journal under the store's home (sweeps/NAME/journal.log),
so a sweep survives a restart: resuming asks again for trials that were cancelled or interrupted, and can go on
past the planned count. The objective is a validation score; the test set is only reported for the best trial.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import optuna
from optuna.trial import TrialState

from nnapp.engine.checks import Checked, check
from nnapp.engine.config import ConfigError, RunConfig
from nnapp.engine.records import Run
from nnapp.engine.states import ICONS, ClaimState, Status
from nnapp.jobs.handle import TaskHandle
from nnapp.jobs.manager import JobManager, Submission, warm_pool
from nnapp.store.store import Store
from nnapp.store.weights import atomic_write
from nnapp.sweep.files import save_spec, sweep_dir, verdict_path
from nnapp.sweep.spec import SweepSpec
from nnapp.sweep.study import SLOT, counted, finite, objective_value, open_study, requeue, slot_of, summary, target, to_go
from nnapp.sweep.view import ask, note

log = logging.getLogger(__name__)
TRAINED = "trained"  # a trial's source when this sweep trains it (else a ClaimState: replayed or followed)
POLL_S = 0.1
STOP_WAIT_S = 30.0  # how long Stop waits for the trials it cancelled to write their end


# --- the driver -----------------------------------------------------------------------------------------------


@dataclass
class Live:
    """A trial whose run the driver is waiting for."""

    trial: optuna.Trial
    twin: optuna.Trial  # the trial in its view (nnapp.sweep.view): it decides the pruning
    key: str
    config: RunConfig
    source: str  # TRAINED (this sweep trains it), ClaimState.ATTACHED (another process does), ClaimState.CACHED (replayed)
    seen: set[int] = field(default_factory=set)  # epochs of its run handled so far
    told: set[int] = field(default_factory=set)  # epochs whose score Optuna has (a step is reported once)


class Executor(Protocol):
    """Where trials train: LocalExecutor (the app's job processes) or sweep_ray.RayExecutor."""

    def submit(self, checked: Checked, pruning: bool) -> Submission: ...  # claims it: cached, attached or queued
    def pump(self) -> None: ...  # carry what trials sent into the store
    def is_active(self, key: str) -> bool: ...
    def verdict(self, key: str, epoch: int, prune: bool) -> None: ...  # the answer a trial waits for after an epoch
    def cancel(self, key: str) -> None: ...
    def node(self, key: str) -> str | None: ...  # where it trained, when that is worth saying
    def close(self) -> None: ...


class Driver:
    """Asks Optuna for trials, runs each as a run through an executor (local or Ray), and tells it how they ended."""

    def __init__(self, spec: SweepSpec, store: Store, executor: Executor, handle: TaskHandle | None = None):
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the driver says what happens, a line per trial
        self.spec, self.store, self.executor = spec, store, executor
        self.handle = handle or TaskHandle(store, spec.key)
        self.study = open_study(spec, store.home)
        self.target = target(spec)
        self.pruning = spec.pruner != "none"
        self.live: dict[int, Live] = {}

    def __repr__(self) -> str:
        return f"Driver({self.spec.name!r}, live={sorted(self.live)}, target={self.target})"

    def run(self) -> dict:
        """Until `target` trials have ended (or Stop): the sweep's summary."""
        save_spec(self.store.home, self.spec)
        requeue(self.study)
        try:
            while True:
                if self.handle.should_stop():
                    self.stop_all()
                    break
                self.fill()
                self.watch()
                if not self.live and not self.room():
                    break
                time.sleep(POLL_S)
        finally:
            self.executor.close()
        return summary(self.study, self.store)

    def room(self) -> bool:
        return counted(self.study.get_trials(deepcopy=False)) + len(self.live) < self.target

    def fill(self) -> None:
        while len(self.live) < self.spec.parallel and self.room() and not self.handle.should_stop():
            asked = ask(self.study, self.spec, busy=bool(self.live))
            if asked is None:
                break  # trial k waits for trial k-parallel to end: what it is asked never depends on which ended first
            self.start(*asked)

    def start(self, trial: optuna.Trial, twin: optuna.Trial) -> None:
        """A new trial: told at once when invalid or stored; else trained or followed."""
        values = {p.field: p.suggest(trial) for p in self.spec.params}
        try:
            checked = check(self.spec.config(values))
            config, problems = checked.config, checked.problems
        except ConfigError as err:
            problems = err.problems
        if problems:
            message = "invalid config: " + "; ".join(f"{k} {v}" for k, v in problems.items())
            self.tell(Live(trial, twin, "", self.spec.base, "invalid"), None, {"status": "invalid", "message": message})
            return
        live = Live(trial, twin, config.key(), config, ClaimState.CACHED)
        stored = self.store.get(live.key)
        if stored is not None and stored.is_partial():
            if self.replay(live, stored, pruned_only=True):
                return
            live.seen = set()  # it trains after all: its new epochs are answered, their scores not told twice
        submission = self.executor.submit(checked, self.pruning)
        live.key = submission.key
        if submission.state == ClaimState.CACHED:
            self.replay(live, self.store.get(submission.key))
            return
        live.source = TRAINED if submission.state == ClaimState.QUEUED else ClaimState.ATTACHED
        trial.set_user_attr("key", live.key)  # the page links a running trial to its live run
        self.live[trial.number] = live

    def replay(self, live: Live, run: Run, pruned_only: bool = False) -> bool:
        """A stored run told to Optuna without training. A pruned one counts only if the pruner prunes it
        again within the epochs it trained; otherwise it has to train (False)."""
        for row in self.store.epochs(run.key):
            self.report(live, row)
            if pruned_only and live.twin.should_prune():
                self.conclude(live, run)
                return True
        if pruned_only:
            return False
        self.conclude(live, run)
        return True

    def report(self, live: Live, row: dict) -> None:
        epoch, value = row["epoch"], row.get(self.spec.objective)
        live.seen.add(epoch)
        if epoch not in live.told and finite(value):
            live.told.add(epoch)
            live.trial.report(value, epoch)
            live.twin.report(value, epoch)

    def watch(self) -> None:
        """New epochs of the running trials reported (and answered, with a pruner); ended ones told."""
        self.executor.pump()
        for number, live in list(self.live.items()):
            run = self.store.get(live.key)
            for row in self.store.epochs(live.key):
                if row["epoch"] in live.seen:
                    continue
                self.report(live, row)
                if self.pruning and live.source == "trained" and row["epoch"] < live.config.epochs:
                    self.executor.verdict(live.key, row["epoch"], live.twin.should_prune())
            if run is not None and run.is_active() and not self.executor.is_active(live.key) and not run.is_live():
                self.store.mark_interrupted()  # whoever trained it died: the store says so, and this trial ends
                run = self.store.get(live.key)
            if run is None or (not run.is_active() and not self.executor.is_active(live.key)):
                del self.live[number]
                self.conclude(live, run)

    def conclude(self, live: Live, run: Run | None) -> None:
        """Tell Optuna how the trial's run ended: its validation score, pruned, or failed (with why)."""
        if run is None:
            self.tell(live, None, {"status": Status.FAILED, "message": "the run was deleted while the sweep ran"})
            return
        epochs = self.store.epochs(run.key)
        attrs: dict[str, Any] = {"status": run.status, "message": run.message or None}
        attrs["seconds"] = run.train_seconds if run.train_seconds is not None else sum(e["seconds"] for e in epochs)
        attrs["node"] = self.executor.node(run.key)
        value = None
        if run.status == Status.DONE:
            value = objective_value(epochs, self.spec.objective, run.config.patience)
            if value is None:
                attrs.update(status=Status.FAILED, message="the run has no finite validation score")
        elif run.status == Status.PRUNED:
            attrs["pruned_at"] = max(live.seen, default=None)
        self.tell(live, value, attrs)

    def tell(self, live: Live, value: float | None, attrs: dict) -> None:
        """The trial's end to Optuna, with what the page shows of it; cancelled and interrupted ones asked again."""
        attrs = {k: v for k, v in {**attrs, "source": live.source, "key": live.key or None}.items() if v is not None}
        live.trial.set_user_attr("run", attrs)
        note(live.trial, live.twin)
        status = attrs["status"]
        state = TrialState.PRUNED if status == Status.PRUNED else TrialState.COMPLETE if value is not None else TrialState.FAIL
        self.study.tell(live.trial, value if state == TrialState.COMPLETE else None, state=state)
        if status in Status.stopped():
            self.study.enqueue_trial(live.trial.params, user_attrs={SLOT: slot_of(live.trial)})
        done = counted(self.study.get_trials(deepcopy=False))
        line = self.line(live.trial, done, value, attrs)
        log.info(line)
        self.handle.report(done, self.target, line)

    def line(self, trial: optuna.Trial, done: int, value: float | None, attrs: dict) -> str:
        """'trial 3 [4/20] ✓ done    val_acc 0.9712  lr=0.00312 batch_size=128  4.1s  cached  1a2b3c4d'"""
        score = f"{self.spec.objective} {value:.4f}" if value is not None else ""
        if attrs.get("pruned_at"):
            score = f"after epoch {attrs['pruned_at']}"
        params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
        secs = f"{attrs['seconds']:.1f}s" if "seconds" in attrs else ""
        status = attrs["status"]
        parts = [f"trial {trial.number} [{done}/{self.target}] {ICONS.get(status, '✗')} {status:<9}", score, params, secs]
        parts += [attrs["source"], attrs.get("key", "")[:8], attrs.get("message", "") if status != Status.PRUNED else ""]
        return "  ".join(p for p in parts if p)

    def stop_all(self) -> None:
        """Stop: cancel the trials this sweep trains and wait for their end (curves kept); followed runs go on
        in their own process. Either way the trial is asked again when the sweep resumes."""
        for live in self.live.values():
            if live.source == "trained":
                self.executor.cancel(live.key)
        end = time.monotonic() + STOP_WAIT_S
        while any(live.source == "trained" for live in self.live.values()) and time.monotonic() < end:
            self.watch()
            time.sleep(POLL_S)
        for live in list(self.live.values()):
            self.tell(live, None, {"status": Status.CANCELLED, "message": "the sweep was stopped"})
        self.live.clear()


# --- executors ------------------------------------------------------------------------------------------------


class TrialJobs(JobManager):
    """The sweep's job processes: `workers` at a time, and never more kept ready than trials left to start."""

    def __init__(self, store: Store, workers: int, threads: int, to_start: int):
        super().__init__(store, workers=workers, threads=threads)
        self.workers, self.to_start = workers, to_start

    def spares(self) -> int:
        return max(0, min(self.workers, self.to_start))


class LocalExecutor:
    """Trials as the app's job processes, `parallel` at a time (no more than the trials left), the CPUs split between them."""

    def __init__(self, spec: SweepSpec, store: Store, owner: str | None = None):
        from nnapp.engine.device import cpu_count  # torch, needed only where trials run locally

        self.owner = owner  # whose jobs the trials are (the sweep's owner)
        left = to_go(spec, store.home)
        at_once = min(spec.parallel, left)
        self.threads = max(1, cpu_count() // at_once)
        self.jobs = TrialJobs(store, workers=at_once, threads=self.threads, to_start=left)
        warm_pool().fill(at_once)  # a process ready for each of the first trials
        self.folder = sweep_dir(store.home, spec.name) / "verdicts"
        self.folder.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalExecutor({self.jobs!r}, threads={self.threads})"

    def submit(self, checked: Checked, pruning: bool) -> Submission:
        for old in self.folder.glob(f"{checked.config.key()}.*"):  # answers to an earlier attempt at this run
            old.unlink(missing_ok=True)
        kwargs = {"folder": str(self.folder), "driver": os.getpid()}
        callbacks = [{"name": "pruning", "kwargs": kwargs}] if pruning else None  # nnapp.tasks.run.CALLBACKS
        self.jobs.to_start -= 1
        # the check is made when a trial is opened
        return self.jobs.submit(checked, callbacks=callbacks, check=False, owner=self.owner)

    def pump(self) -> None:
        """Nothing to carry: job processes write their runs to the store themselves."""

    def is_active(self, key: str) -> bool:
        return self.jobs.is_active(key)

    def verdict(self, key: str, epoch: int, prune: bool) -> None:
        atomic_write(verdict_path(self.folder, key, epoch), b"prune" if prune else b"go")

    def cancel(self, key: str) -> None:
        self.jobs.cancel(key)

    def node(self, key: str) -> str | None:
        return None

    def close(self) -> None:
        self.jobs.shutdown()
        shutil.rmtree(self.folder, ignore_errors=True)


def make_executor(spec: SweepSpec, store: Store, owner: str | None = None):
    """Where the trials train; they are `owner`'s runs (the sweep's owner; the machine's user by default)."""
    if spec.ray:
        from nnapp.sweep.cluster import RayExecutor  # ray, needed only for a cluster

        return RayExecutor(spec, store, owner)
    return LocalExecutor(spec, store, owner)


def sweep_task(payload: dict, store: Store, handle: TaskHandle) -> dict:
    """The 'sweep' task kind (nnapp.tasks.TASKS): the driver, in a job process of the app or in the CLI's process."""
    spec = SweepSpec.from_dict(payload)
    task = store.tasks.get(handle.key)  # who started the sweep: its trials are their jobs
    return Driver(spec, store, make_executor(spec, store, task.owner if task else None), handle).run()
