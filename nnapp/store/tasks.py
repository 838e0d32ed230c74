"""The tasks table: background work other than training a run (a projection, a search, a check), by key.

A task has a kind (nnapp.engine.states.TaskKind), a key, a JSON payload, a status from the runs'
vocabulary, its progress and a small JSON result. The store holds one TaskTable as `store.tasks`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from typing import Any

from nnapp.engine.people import machine_user
from nnapp.engine.records import Claim, TaskRun
from nnapp.engine.states import ClaimState, Status, TaskKind
from nnapp.store.database import Database
from nnapp.store.owners import owner_of
from nnapp.system.process import alive, identity


class TaskTable:
    """Reads and writes of the tasks table, each in its own short connection."""

    def __init__(self, database: Database):
        self.database = database

    def __repr__(self) -> str:
        return f"TaskTable({str(self.database.path)!r})"

    def claim(self, kind: str, key: str, payload: dict, force: bool = False, owner: str | None = None) -> Claim:
        """Like Store.claim for runs: a done task is cached, a live one attached, else this caller's (recorded
        as `owner`'s, the machine's user by default)."""
        if kind not in set(TaskKind):  # an unknown kind is an error before anything is written
            raise ValueError(f"unknown task {str(kind)[:40]!r}; choose from {', '.join(TaskKind)}")
        with self.database.transaction() as db:
            row = db.execute("SELECT status, process FROM tasks WHERE key=?", (key,)).fetchone()
            if row is not None and row["status"] == Status.DONE and not force:
                return Claim(key, ClaimState.CACHED)
            if row is not None and row["status"] in Status.active() and alive(row["process"]):
                return Claim(key, ClaimState.ATTACHED)
            db.execute(
                "INSERT OR REPLACE INTO tasks (key, kind, status, created, pid, process, payload, owner)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, kind, Status.QUEUED, time.time(), os.getpid(), identity(), json.dumps(payload), owner or machine_user()),
            )
        return Claim(key, ClaimState.CLAIMED)

    def set(self, key: str, status: Status | None = None, message: str | None = None, **fields: Any) -> None:
        values = {k: json.dumps(v) if k in ("progress", "result") else v for k, v in fields.items()}
        if status is not None:
            values.update(status=Status(status), pid=os.getpid(), process=identity())
            values.setdefault("started" if status == Status.RUNNING else "finished", time.time())
        if message is not None:
            values["message"] = message
        cols = ", ".join(f"{k}=?" for k in values)
        with self.database.connect() as db:
            db.execute(f"UPDATE tasks SET {cols} WHERE key=?", (*values.values(), key))

    def get(self, key: str) -> TaskRun | None:
        with self.database.connect() as db:
            row = db.execute("SELECT * FROM tasks WHERE key=?", (key,)).fetchone()
        return _decode(row) if row else None


def _decode(row: sqlite3.Row) -> TaskRun:
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
        process=row["process"] if "process" in row.keys() else None,
        owner=owner_of(row),
    )
