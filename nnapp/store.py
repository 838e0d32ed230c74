"""The run store: an SQLite database (WAL) of runs and their metrics, weights beside it as safetensors."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from nnapp import comparable, histograms
from nnapp.comparable import ComparableLosses
from nnapp.config import ConfigError, RunConfig
from nnapp.drawings import Drawings
from nnapp.histograms import Histograms
from nnapp.records import ACTIVE, RETRAIN, STATUSES, Claim, FitResult, Run, base_key, retrain_key
from nnapp.tasks import Tasks
from nnapp.weights import WeightFiles

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    device TEXT,
    precision TEXT,
    pid INTEGER,
    message TEXT,
    progress TEXT,
    test TEXT,
    train_seconds REAL,
    weights_sha256 TEXT,
    parent TEXT,
    weights_file TEXT
);
CREATE TABLE IF NOT EXISTS epochs (
    key TEXT NOT NULL, epoch INTEGER NOT NULL, train_loss REAL, train_acc REAL,
    val_loss REAL, val_acc REAL, lr REAL, seconds REAL,
    PRIMARY KEY (key, epoch)
);
CREATE TABLE IF NOT EXISTS steps (
    key TEXT NOT NULL, step INTEGER NOT NULL, epoch INTEGER, loss REAL, acc REAL, lr REAL,
    samples_per_s REAL, elapsed REAL,
    PRIMARY KEY (key, step)
);
CREATE TABLE IF NOT EXISTS predictions (
    key TEXT PRIMARY KEY, pred BLOB NOT NULL, prob BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS drawings (
    id INTEGER PRIMARY KEY AUTOINCREMENT, label INTEGER NOT NULL, pixels BLOB NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, created REAL NOT NULL, started REAL,
    finished REAL, pid INTEGER, message TEXT, payload TEXT, progress TEXT, result TEXT
);
"""
    + comparable.SCHEMA
    + histograms.SCHEMA
)
RUN_TABLES = ("epochs", "steps", "predictions", *comparable.TABLES, "histograms")  # the rows a run owns besides its own
NOT_RETRAIN = f"key NOT LIKE '%{RETRAIN}'"  # retrains in progress are not listed as runs of their own


def default_home() -> Path:
    return Path(os.environ.get("NNAPP_HOME") or "runs")


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store(WeightFiles, Drawings, Tasks, Histograms, ComparableLosses):
    """All reads and writes of runs. Each call opens its own short connection, so threads can share a Store."""

    def __init__(self, home: Path | str | None = None):
        self.home = Path(home) if home is not None else default_home()
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "weights").mkdir(exist_ok=True)
        self.db_path = self.home / "runs.sqlite"
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            if "weights_file" not in {r["name"] for r in db.execute("PRAGMA table_info(runs)")}:
                db.execute("ALTER TABLE runs ADD COLUMN weights_file TEXT")  # a store from before content-named weights
        self.mark_interrupted()

    def __repr__(self) -> str:
        return f"Store({str(self.home)!r})"

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.db_path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:  # one transaction: committed whole or rolled back whole
                yield db
        finally:
            db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken at its start (BEGIN IMMEDIATE): read-then-write without a race
        against other processes."""
        db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    # --- runs ---------------------------------------------------------------------------------

    def mark_interrupted(self) -> int:
        """Runs and tasks left queued or running by a process that no longer exists become 'interrupted'."""
        marks, dead = ", ".join("?" * len(ACTIVE)), 0
        with self._db() as db:
            for table in ("runs", "tasks"):
                rows = db.execute(f"SELECT key, pid FROM {table} WHERE status IN ({marks})", ACTIVE).fetchall()
                keys = [r["key"] for r in rows if not pid_alive(r["pid"])]
                for key in keys:
                    db.execute(
                        f"UPDATE {table} SET status='interrupted', finished=?, message=? WHERE key=?",
                        (time.time(), "the process running it stopped before it finished", key),
                    )
                dead += len(keys)
        return dead

    def create(self, config: RunConfig, status: str = "queued", key: str | None = None) -> str:
        """Insert (or reset) the run for `config` under `key` (its own by default); old metrics are cleared."""
        key = key or config.key()
        with self._db() as db:
            _reset(db, config, key, status)
        return key

    def claim(self, config: RunConfig, force: bool = False) -> Claim:
        """Decide, once across every process, who trains `config`.

        'cached' when it finished before (and not `force`); 'attached' when a live process is training it
        (or, with `force`, retraining it); else 'claimed': a queued row now exists for this caller to train.
        A forced retrain of a finished run is claimed under retrain_key(key): the finished run stays
        untouched until the retrain succeeds (see finish)."""
        key = config.key()
        with self._transaction() as db:
            run = _fetch(db, key)
            if run is not None and run.is_active() and pid_alive(run.pid):
                return Claim(key, "attached")
            if run is None or not run.is_finished():
                _reset(db, config, key, "queued")
                return Claim(key, "claimed")
            if not force:
                return Claim(key, "cached")
            retrain = _fetch(db, retrain_key(key))
            if retrain is not None and retrain.is_active() and pid_alive(retrain.pid):
                return Claim(retrain.key, "attached")
            _reset(db, config, retrain_key(key), "queued")
            return Claim(retrain_key(key), "claimed")

    def set_status(self, key: str, status: str, message: str | None = None, **fields) -> None:
        assert status in STATUSES, status
        values = {"status": status, "pid": os.getpid(), **fields}
        if message is not None:
            values["message"] = message
        if status == "running":
            values.setdefault("started", time.time())
        if status not in ACTIVE:
            values.setdefault("finished", time.time())
        cols = ", ".join(f"{k}=?" for k in values)
        with self._db() as db:
            db.execute(f"UPDATE runs SET {cols} WHERE key=?", (*values.values(), key))

    def set_progress(self, key: str, progress: dict, steps: list[dict] = (), epoch_row: dict | None = None) -> None:
        """Record live progress with the step and epoch rows it brings, in one transaction."""
        with self._db() as db:
            db.execute("UPDATE runs SET progress=? WHERE key=?", (json.dumps(progress), key))
            if steps:
                db.executemany(
                    "INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(key, s["step"], s["epoch"], s["loss"], s["acc"], s["lr"], s["samples_per_s"], s["elapsed"]) for s in steps],
                )
            if epoch_row:
                e = epoch_row
                db.execute(
                    "INSERT OR REPLACE INTO epochs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (key, e["epoch"], e["train_loss"], e["train_acc"], e["val_loss"], e["val_acc"], e["lr"], e["seconds"]),
                )
            self._write_unsmoothed(db, key, steps, epoch_row)

    def finish(self, key: str, result: FitResult) -> None:
        """Store a FitResult: weights first (in a file of their own), then the row that points at them.

        A retrain that ends well replaces its run in the same transaction; one that does not stays
        beside it (unlisted) with its status, and the run it was to replace is left as it was."""
        sha = name = None
        if result.status == "done":
            sha, name = self.write_weights(base_key(key), result.state_dict)
        replaced = self.weights_path(base_key(key)) if key != base_key(key) and sha else None
        with self._db() as db:
            if result.predictions is not None:
                db.execute(
                    "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?)",
                    (key, result.predictions.astype(np.uint8).tobytes(), result.probabilities.astype(np.float32).tobytes()),
                )
            db.execute(
                "UPDATE runs SET status=?, finished=?, device=?, precision=?, message=?, test=?, train_seconds=?,"
                " weights_sha256=?, weights_file=? WHERE key=?",
                (
                    result.status,
                    time.time(),
                    result.device,
                    result.precision,
                    result.message,
                    json.dumps(result.test) if result.test else None,
                    result.train_seconds,
                    sha,
                    name,
                    key,
                ),
            )
            if replaced is not None:
                _promote(db, key, base_key(key))
        if replaced is not None and replaced.name != name:
            replaced.unlink(missing_ok=True)

    def get(self, key: str) -> Run | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM runs WHERE key=?", (key,)).fetchone()
        return _decode(row) if row else None

    def find(self, prefix: str) -> Run | None:
        """A run by its key or an unambiguous prefix of it."""
        with self._db() as db:
            rows = db.execute(f"SELECT * FROM runs WHERE key LIKE ? AND {NOT_RETRAIN} LIMIT 2", (prefix + "%",)).fetchall()
        return _decode(rows[0]) if len(rows) == 1 else None

    def runs(self) -> list[Run]:
        """Every run, newest first."""
        with self._db() as db:
            rows = db.execute(f"SELECT * FROM runs WHERE {NOT_RETRAIN} ORDER BY created DESC").fetchall()
        return [run for run in map(_decode, rows) if run is not None]

    def counts(self) -> dict[str, int]:
        with self._db() as db:
            rows = db.execute(f"SELECT status, COUNT(*) AS n FROM runs WHERE {NOT_RETRAIN} GROUP BY status")
            return {r["status"]: r["n"] for r in rows}

    def epochs(self, key: str) -> list[dict]:
        with self._db() as db:
            return [dict(r) for r in db.execute(f"{comparable.SELECT_EPOCHS} WHERE key=? ORDER BY epoch", (key,))]

    def steps(self, key: str, max_rows: int | None = None) -> list[dict]:
        """Per-step metrics; with `max_rows`, every k-th step so that at most about that many come back."""
        with self._db() as db:
            if max_rows:
                count = db.execute("SELECT COUNT(*) FROM steps WHERE key=?", (key,)).fetchone()[0]
                every = max(1, -(-count // max_rows))
                rows = db.execute(f"{comparable.SELECT_STEPS} WHERE key=? AND step % ? = 0 ORDER BY step", (key, every))
                return [dict(r) for r in rows]
            return [dict(r) for r in db.execute(f"{comparable.SELECT_STEPS} WHERE key=? ORDER BY step", (key,))]

    def predictions(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        with self._db() as db:
            row = db.execute("SELECT pred, prob FROM predictions WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        return np.frombuffer(row["pred"], dtype=np.uint8), np.frombuffer(row["prob"], dtype=np.float32)

    def delete(self, key: str) -> None:
        """A run, its metrics and its weights, with any retrain of it."""
        for k in (key, retrain_key(key)):
            path = self.weights_path(k)
            with self._db() as db:
                for table in ("runs", *RUN_TABLES):
                    db.execute(f"DELETE FROM {table} WHERE key=?", (k,))
            path.unlink(missing_ok=True)


def _decode(row: sqlite3.Row) -> Run | None:
    try:
        config = RunConfig.from_dict(json.loads(row["config"]))
    except (ConfigError, json.JSONDecodeError, TypeError):
        return None  # written by an incompatible version: skipped, never fatal
    return Run(
        key=row["key"],
        config=config,
        status=row["status"],
        created=row["created"],
        started=row["started"],
        finished=row["finished"],
        device=row["device"],
        precision=row["precision"],
        message=row["message"],
        progress=json.loads(row["progress"]) if row["progress"] else None,
        test=json.loads(row["test"]) if row["test"] else None,
        train_seconds=row["train_seconds"],
        weights_sha256=row["weights_sha256"],
        parent=row["parent"],
        pid=row["pid"],
        weights_file=row["weights_file"],
    )


def _fetch(db: sqlite3.Connection, key: str) -> Run | None:
    row = db.execute("SELECT * FROM runs WHERE key=?", (key,)).fetchone()
    return _decode(row) if row else None


def _reset(db: sqlite3.Connection, config: RunConfig, key: str, status: str) -> None:
    """A fresh row for `key`, without the metrics of whatever ran under it before."""
    for table in RUN_TABLES:
        db.execute(f"DELETE FROM {table} WHERE key=?", (key,))
    db.execute(
        "INSERT OR REPLACE INTO runs (key, config, status, created, pid, parent) VALUES (?, ?, ?, ?, ?, ?)",
        (key, config.to_json(), status, time.time(), os.getpid(), config.init_from or None),
    )


def _promote(db: sqlite3.Connection, retrain: str, key: str) -> None:
    """The finished retrain becomes the run: its row and metrics move to `key`, replacing the old ones."""
    for table in ("runs", *RUN_TABLES):
        db.execute(f"DELETE FROM {table} WHERE key=?", (key,))
        db.execute(f"UPDATE {table} SET key=? WHERE key=?", (key, retrain))
