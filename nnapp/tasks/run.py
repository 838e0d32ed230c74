"""The kinds of background work a job process runs, as the functions that do them, and how one is run.

Each kind in nnapp.engine.states.TaskKind has one entry in TASKS. Training a run keeps its state in the
runs table; every other kind reports through the tasks table (TaskHandle) and returns a small JSON result.
A kind's function imports what it needs where it runs, so a job process warms up with torch and the
training code only (a sweep's Optuna, a projection's scikit-learn are imported by the jobs that use them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from nnapp.engine.config import RunConfig
from nnapp.engine.records import TaskRun
from nnapp.engine.states import ClaimState, Status, TaskKind
from nnapp.engine.train import Callback
from nnapp.jobs.handle import TaskHandle
from nnapp.jobs.runs import run_and_store
from nnapp.store.stops import stop_file
from nnapp.store.store import Store


def train_task(payload: dict, store: Store, key: str, should_stop: Callable[[], bool] | None = None) -> Status:
    """A job process's training: the claimed run `key` of the config in `payload`, with the callbacks it names."""
    config = RunConfig.from_dict(payload["config"])
    callbacks = payload_callbacks(payload, store, key)
    return run_and_store(config, store, should_stop=should_stop, callbacks=callbacks, key=key)


def _not_a_digit(payload: dict, store: Store, handle: TaskHandle) -> dict:
    from nnapp.predict.ood import check_task

    return check_task(payload, store, handle)


def _tsne(payload: dict, store: Store, handle: TaskHandle) -> dict:
    from nnapp.inside.projector import tsne_task

    return tsne_task(payload, store, handle)


def _lr_find(payload: dict, store: Store, handle: TaskHandle) -> dict:
    from nnapp.inside.lrfind import lr_find_task

    return lr_find_task(payload, store, handle)


def _sweep(payload: dict, store: Store, handle: TaskHandle) -> dict:
    from nnapp.sweep.driver import sweep_task

    return sweep_task(payload, store, handle)


@dataclass(frozen=True)
class Task:
    fn: Callable[[dict, Store, TaskHandle], dict]  # (payload, store, handle) -> the task's result
    help: str


# Training is TaskKind.TRAIN (train_task, whose state lives in the runs table); these report through the tasks table.
TASKS: dict[TaskKind, Task] = {
    TaskKind.NOT_A_DIGIT: Task(_not_a_digit, "make a run's not-a-digit check"),
    TaskKind.TSNE: Task(_tsne, "t-SNE map of a run's test digits"),
    TaskKind.LR_FIND: Task(_lr_find, "learning-rate range test of a config"),
    TaskKind.SWEEP: Task(_sweep, "search hyperparameters: one driver asking Optuna for trials, each a run"),
}


def _pruning(store: Store, key: str, **kwargs) -> Callback:
    from nnapp.sweep.pruning import file_pruning

    return file_pruning(store, key, **kwargs)


# Training callbacks a job's payload may name, built in the training process: {"name": ..., "kwargs": {...}}.
CALLBACKS: dict[str, Callable[..., Callback]] = {"pruning": _pruning}  # a sweep's pruning waits there for its driver


def payload_callbacks(payload: dict, store: Store, key: str) -> list[Callback]:
    """The callbacks a job's payload names, each built as CALLBACKS[name](store, key, **kwargs)."""
    return [CALLBACKS[c["name"]](store, key, **c.get("kwargs", {})) for c in payload.get("callbacks", ())]


def run_task(kind: str, key: str, payload: dict, store: Store, should_stop: Callable[[], bool] | None = None) -> Status:
    """Run one task to its end, its state written to the store; returns the final status."""
    kind = TaskKind(kind)
    if kind == TaskKind.TRAIN:
        return train_task(payload, store, key, should_stop)
    store.tasks.set(key, status=Status.RUNNING)
    handle = TaskHandle(store, key, should_stop)
    try:
        result = TASKS[kind].fn(payload, store, handle)
    except BaseException as err:
        store.tasks.set(key, status=Status.FAILED, message=str(err) or type(err).__name__)
        raise
    status = Status.CANCELLED if handle.should_stop() else Status.DONE
    store.tasks.set(key, status=status, result=result if status == Status.DONE else None)
    return status


def run_or_follow(
    store: Store, kind: str, key: str, payload: dict, force: bool = False, every: float = 0.2
) -> tuple[TaskRun, ClaimState]:
    """A task as it ended, and how: served from the store (cached), followed while another process runs
    it (attached), or run here (claimed), where a stop request (the app's Cancel) reaches it too."""
    claim = store.tasks.claim(kind, key, payload, force=force)
    if claim.state == ClaimState.CLAIMED:
        stop = stop_file(store, key)
        stop.clear()
        try:
            run_task(kind, key, payload, store, should_stop=stop.is_set)
        finally:
            stop.clear()
    while (task := store.tasks.get(key)) is not None and task.is_active():
        if not task.is_live():  # its process died: marked interrupted, nothing to wait for
            store.mark_interrupted()
            continue
        time.sleep(every)
    return task, claim.state
