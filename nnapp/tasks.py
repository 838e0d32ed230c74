"""Background work other than training: a kind from TASKS, a key, a JSON payload; state in the tasks table.

A job process (see jobs.py) runs one task: training a run (kind "train", whose state lives in the runs
table), or any kind registered here, whose function gets the payload, the store and a handle to report
progress and to see a stop request, and returns a small JSON result.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nnapp.records import ACTIVE, STATUSES, Claim, TaskRun
from nnapp.registry import Registry, resolve

if TYPE_CHECKING:
    from nnapp.store import Store


@dataclass(frozen=True)
class TaskSpec:
    fn: str  # dotted path of fn(payload: dict, store: Store, handle: TaskHandle) -> dict (the result)
    help: str


# Training is the "train" kind (runs.train_task); the rest report through the tasks table.
TASKS: Registry[TaskSpec] = Registry(
    "task",
    {
        "train": TaskSpec("nnapp.runs.train_task", "train a run"),
        "not_a_digit": TaskSpec("nnapp.ood.check_task", "make a run's not-a-digit check"),
        "tsne": TaskSpec("nnapp.projector.tsne_task", "t-SNE map of a run's test digits"),
        "lr_find": TaskSpec("nnapp.lrfind.lr_find_task", "learning-rate range test of a config"),
        "sweep": TaskSpec("nnapp.sweep.sweep_task", "search hyperparameters: one driver asking Optuna for trials, each a run"),
    },
)


class TaskHandle:
    """What a task function sees: report(done, total, text) writes its progress; should_stop() a stop request."""

    def __init__(self, store: Store, key: str, should_stop: Callable[[], bool] | None = None):
        self.store, self.key, self._should_stop = store, key, should_stop
        self._last = 0.0

    def report(self, done: int, total: int, text: str = "", every: float = 0.25) -> None:
        now = time.monotonic()
        if now - self._last >= every or done >= total:
            self._last = now
            self.store.set_task(self.key, progress={"done": done, "total": total, "text": text})

    def should_stop(self) -> bool:
        return bool(self._should_stop and self._should_stop())


def run_task(kind: str, key: str, payload: dict, store: Store, should_stop: Callable[[], bool] | None = None) -> str:
    """Run one task to its end, its state written to the store; returns the final status."""
    if kind == "train":
        return resolve(TASKS[kind].fn)(payload, store, key, should_stop)
    store.set_task(key, status="running")
    handle = TaskHandle(store, key, should_stop)
    try:
        result = resolve(TASKS[kind].fn)(payload, store, handle)
    except BaseException as err:
        store.set_task(key, status="failed", message=str(err) or type(err).__name__)
        raise
    status = "cancelled" if handle.should_stop() else "done"
    store.set_task(key, status=status, result=result if status == "done" else None)
    return status


def run_or_follow(
    store: Store, kind: str, key: str, payload: dict, force: bool = False, every: float = 0.2
) -> tuple[TaskRun, str]:
    """A task as it ended, and how: served from the store ("cached"), followed while another process runs
    it ("attached"), or run here ("claimed"), where a stop request (the app's Cancel) reaches it too."""
    from nnapp.jobs import stop_file
    from nnapp.store import pid_alive

    claim = store.claim_task(kind, key, payload, force=force)
    if claim.state == "claimed":
        stop = stop_file(store, key)
        stop.clear()
        try:
            run_task(kind, key, payload, store, should_stop=stop.is_set)
        finally:
            stop.clear()
    while (task := store.task(key)) is not None and task.is_active():
        if not pid_alive(task.pid):  # its process died: marked interrupted, nothing to wait for
            store.mark_interrupted()
            continue
        time.sleep(every)
    return task, claim.state


class Tasks:
    """The tasks part of Store: `self._db()` and `self._transaction()` come from it."""

    def claim_task(self, kind: str, key: str, payload: dict, force: bool = False) -> Claim:
        """Like Store.claim for runs: a done task is 'cached', a live one 'attached', else this caller's."""
        from nnapp.store import pid_alive

        TASKS[kind]  # an unknown kind is an error before anything is written
        with self._transaction() as db:
            row = db.execute("SELECT status, pid FROM tasks WHERE key=?", (key,)).fetchone()
            if row is not None and row["status"] == "done" and not force:
                return Claim(key, "cached")
            if row is not None and row["status"] in ACTIVE and pid_alive(row["pid"]):
                return Claim(key, "attached")
            db.execute(
                "INSERT OR REPLACE INTO tasks (key, kind, status, created, pid, payload) VALUES (?, ?, 'queued', ?, ?, ?)",
                (key, kind, time.time(), os.getpid(), json.dumps(payload)),
            )
        return Claim(key, "claimed")

    def set_task(self, key: str, status: str | None = None, message: str | None = None, **fields: Any) -> None:
        values = {k: json.dumps(v) if k in ("progress", "result") else v for k, v in fields.items()}
        if status is not None:
            assert status in STATUSES, status
            values.update(status=status, pid=os.getpid())
            values.setdefault("started" if status == "running" else "finished", time.time())
        if message is not None:
            values["message"] = message
        cols = ", ".join(f"{k}=?" for k in values)
        with self._db() as db:
            db.execute(f"UPDATE tasks SET {cols} WHERE key=?", (*values.values(), key))

    def task(self, key: str) -> TaskRun | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM tasks WHERE key=?", (key,)).fetchone()
        return _decode_task(row) if row else None


def _decode_task(row: sqlite3.Row) -> TaskRun:
    loads = lambda text: json.loads(text) if text else None  # noqa: E731
    return TaskRun(
        key=row["key"],
        kind=row["kind"],
        status=row["status"],
        created=row["created"],
        started=row["started"],
        finished=row["finished"],
        pid=row["pid"],
        message=row["message"],
        payload=loads(row["payload"]) or {},
        progress=loads(row["progress"]),
        result=loads(row["result"]),
    )
