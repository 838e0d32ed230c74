"""The run store: an SQLite database (WAL) of runs and their metrics, weights beside it as safetensors."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections import Counter
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from nnapp.engine import datasets as catalogue
from nnapp.engine.config import RunConfig
from nnapp.engine.fields import KEY, RUN_KEY
from nnapp.engine.records import RETRAIN, FitResult, Run, base_key, retrain_key
from nnapp.engine.states import Status
from nnapp.store import comparable, histograms, imports, labels
from nnapp.store import datasets as own_datasets
from nnapp.store.claims import RUN_TABLES, Claims, _promote, _reset
from nnapp.store.comparable import ComparableLosses
from nnapp.store.database import READ_ONLY, Database, can_fall_back
from nnapp.store.datasets import DataSets
from nnapp.store.drawings import Drawings
from nnapp.store.histograms import Histograms
from nnapp.store.labels import RunLabels
from nnapp.store.owners import add_owner_columns
from nnapp.store.rows import decode
from nnapp.store.stops import stop_file
from nnapp.store.tasks import TaskTable
from nnapp.store.weights import ORPHAN, WEIGHTS_LOCK, RunDeleted, WeightFiles
from nnapp.system.errors import StoreError
from nnapp.system.files import clean_temp_files, exclusive_lock_now, os_error_text
from nnapp.system.process import alive, identity, pid_alive

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
    weights_file TEXT,
    owner TEXT,
    process TEXT
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
    id INTEGER PRIMARY KEY AUTOINCREMENT, label INTEGER NOT NULL, pixels BLOB NOT NULL, created REAL NOT NULL,
    owner TEXT
);
CREATE TABLE IF NOT EXISTS tasks (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, created REAL NOT NULL, started REAL,
    finished REAL, pid INTEGER, message TEXT, payload TEXT, progress TEXT, result TEXT, owner TEXT, process TEXT
);
"""
    + comparable.SCHEMA
    + histograms.SCHEMA
    + imports.SCHEMA
    + labels.SCHEMA
    + own_datasets.SCHEMA
)
STOPPED = "the process running it stopped before it finished"
NOT_RETRAIN = f"key NOT LIKE '%{RETRAIN}'"  # retrains in progress are not listed as runs of their own


def default_home() -> Path:
    return Path(os.environ.get("NNAPP_HOME") or "runs")


class Store(Claims, WeightFiles, Drawings, Histograms, ComparableLosses, imports.Imports, RunLabels, DataSets):
    """All reads and writes of runs. Each call opens its own short connection, so threads can share a Store.

    The data sets people make live here too (nnapp.store.datasets); opening a store lets this process find
    their versions (nnapp.engine.datasets).

    Its tasks table is `tasks` (nnapp.store.tasks.TaskTable). A store whose folder cannot be written is opened read-only (`readonly`): runs can be listed and shown,
    and a write says so in one sentence. Every SQLite or file-system failure is a StoreError.
    """

    def __init__(self, home: Path | str | None = None):
        self.home = Path(home) if home is not None else default_home()
        self.db_path = self.home / "runs.sqlite"
        catalogue.add_folder(self.home / "datasets")
        self.database = Database(self.db_path)
        self.tasks = TaskTable(self.database)
        try:
            self._create()
        except (StoreError, OSError) as err:
            if not (self.db_path.is_file() and can_fall_back(err)):
                raise (
                    err if isinstance(err, StoreError) else StoreError(f"cannot create a run store: {os_error_text(err)}")
                ) from None
            self.database.open_readonly()
        if not self.readonly:
            self.mark_interrupted()
            clean_temp_files(self.home / "weights", pid_alive)
            self.remove_orphans()

    def __repr__(self) -> str:
        return f"Store({str(self.home)!r})"

    @property
    def readonly(self) -> bool:
        """Opened without write access: runs list and show; writing raises a StoreError saying so."""
        return self.database.readonly

    def _create(self) -> None:
        for folder in (self.home, self.home / "weights"):
            if folder.exists() and not folder.is_dir():
                raise StoreError(f"the run store {folder} is a file, not a folder: point NNAPP_HOME at a folder")
            folder.mkdir(parents=True, exist_ok=True)
            if not os.access(folder, os.W_OK | os.X_OK):  # found now, not after a training has run
                raise StoreError(f"the run store {folder} {READ_ONLY}")
        if self.db_path.exists() and not self.db_path.is_file():  # SQLite would wait for ever on a FIFO
            raise StoreError(f"the run store {self.db_path} is not a regular file: move it away to start a new store")
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            if "weights_file" not in {r["name"] for r in db.execute("PRAGMA table_info(runs)")}:
                db.execute("ALTER TABLE runs ADD COLUMN weights_file TEXT")  # a store from before content-named weights
            add_owner_columns(db)
            _add_process_columns(db)

    def _db(self) -> AbstractContextManager:
        return self.database.connect()

    def _transaction(self) -> AbstractContextManager:
        return self.database.transaction()

    # --- runs ---------------------------------------------------------------------------------

    def mark_interrupted(self) -> int:
        """Runs and tasks left queued or running by a process that no longer runs become 'interrupted'. A pid
        alone proves nothing (a restart reuses pids): the process must be the one that wrote the row
        (nnapp.system.process.alive). Each row is marked only if it still names that process."""
        active, dead = Status.active(), 0
        marks = ", ".join("?" * len(active))
        with self._db() as db:
            for table in ("runs", "tasks"):
                rows = db.execute(f"SELECT key, process FROM {table} WHERE status IN ({marks})", active).fetchall()
                for r in (r for r in rows if not alive(r["process"])):
                    dead += db.execute(
                        f"UPDATE {table} SET status=?, finished=?, message=? WHERE key=? AND status IN ({marks})"
                        " AND process IS ?",
                        (Status.INTERRUPTED, time.time(), STOPPED, r["key"], *active, r["process"]),
                    ).rowcount
        return dead

    def create(self, config: RunConfig, status: Status = Status.QUEUED, key: str | None = None, owner: str | None = None) -> str:
        """Insert (or reset) the run for `config` under `key` (its own by default); old metrics are cleared."""
        key = key or config.key()
        with self._db() as db:
            _reset(db, config, key, status, owner)
        return key

    def set_status(self, key: str, status: Status, message: str | None = None, **fields) -> None:
        values = {"status": Status(status), "pid": os.getpid(), "process": identity(), **fields}
        if message is not None:
            values["message"] = message
        if status == Status.RUNNING:
            values.setdefault("started", time.time())
        if status not in Status.active():
            values.setdefault("finished", time.time())
        cols = ", ".join(f"{k}=?" for k in values)
        with self._db() as db:
            db.execute(f"UPDATE runs SET {cols} WHERE key=?", (*values.values(), key))

    def set_progress(self, key: str, progress: dict, steps: list[dict] = (), epoch_row: dict | None = None) -> None:
        """Record live progress with the step and epoch rows it brings, in one transaction."""
        with self._db() as db:
            if not db.execute("UPDATE runs SET progress=? WHERE key=?", (json.dumps(progress), key)).rowcount:
                raise RunDeleted(key)  # deleted while it trains: the training stops, nothing of it is written
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
        beside it (unlisted) with its status, and the run it was to replace is left as it was. A run deleted
        while it trained keeps nothing: its weights are removed and RunDeleted says so."""
        sha = name = None
        with self.writing_weights():  # the file and the row that points at it, as one for remove_orphans
            if result.status == Status.DONE:
                sha, name = self.write_weights(key, result.state_dict)
            replaced = self.weights_path(base_key(key)) if key != base_key(key) and sha else None
            try:
                with self._db() as db:
                    self._finish_rows(db, key, result, sha, name)
                    if replaced is not None:
                        _promote(db, key, base_key(key))
            except RunDeleted:
                if name is not None:
                    self.remove_unused_weights(name)
                raise
        if replaced is not None and replaced.name != name:
            replaced.unlink(missing_ok=True)

    @staticmethod
    def _finish_rows(db, key: str, result: FitResult, sha: str | None, name: str | None) -> None:
        test = json.dumps(result.test) if result.test else None
        updated = db.execute(
            "UPDATE runs SET status=?, finished=?, device=?, precision=?, message=?, test=?, train_seconds=?,"
            " weights_sha256=?, weights_file=? WHERE key=?",
            (result.status, time.time(), result.device, result.precision, result.message, test, result.train_seconds)
            + (sha, name, key),
        ).rowcount
        if not updated:
            raise RunDeleted(key)
        if result.predictions is not None:
            db.execute(
                "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?)",
                (key, result.predictions.astype(np.uint8).tobytes(), result.probabilities.astype(np.float32).tobytes()),
            )

    def get(self, key: str) -> Run | None:
        """The run with this key (unreadable when its row is damaged), or None."""
        with self._db() as db:
            row = db.execute("SELECT * FROM runs WHERE key=?", (key,)).fetchone()
        return decode(row) if row else None

    def find(self, prefix: str) -> Run | None:
        """A run by its key or an unambiguous prefix of it."""
        if not prefix:
            return None
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self._db() as db:
            query = f"SELECT * FROM runs WHERE key LIKE ? ESCAPE '\\' AND {NOT_RETRAIN} LIMIT 2"
            rows = db.execute(query, (pattern,)).fetchall()
        return decode(rows[0]) if len(rows) == 1 else None

    def runs(self) -> list[Run]:
        """Every run, newest first (retrains in progress are not runs of their own)."""
        with self._db() as db:
            rows = db.execute(f"SELECT * FROM runs WHERE {NOT_RETRAIN} ORDER BY created DESC").fetchall()
        return [decode(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """Runs by status as they read (an unreadable row counts as 'unreadable')."""
        return dict(Counter(run.status for run in self.runs()))

    def running_owners(self) -> dict[str, int]:
        """How many runs each owner has training now (any process)."""
        with self._db() as db:
            rows = db.execute("SELECT owner, COUNT(*) AS n FROM runs WHERE status=? GROUP BY owner", (Status.RUNNING,))
            return {r["owner"]: r["n"] for r in rows if r["owner"]}

    def epochs(self, key: str) -> list[dict]:
        with self._db() as db:
            return [_metrics(r) for r in db.execute(f"{comparable.SELECT_EPOCHS} WHERE key=? ORDER BY epoch", (key,))]

    def steps(self, key: str, max_rows: int | None = None) -> list[dict]:
        """Per-step metrics; with `max_rows`, every k-th step so that at most about that many come back."""
        with self._db() as db:
            if max_rows:
                count = db.execute("SELECT COUNT(*) FROM steps WHERE key=?", (key,)).fetchone()[0]
                every = max(1, -(-count // max_rows))
                rows = db.execute(f"{comparable.SELECT_STEPS} WHERE key=? AND step % ? = 0 ORDER BY step", (key, every))
                return [_metrics(r) for r in rows]
            return [_metrics(r) for r in db.execute(f"{comparable.SELECT_STEPS} WHERE key=? ORDER BY step", (key,))]

    def predictions(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Each test image's predicted class and its probability; None when absent or damaged."""
        with self._db() as db:
            row = db.execute("SELECT pred, prob FROM predictions WHERE key=?", (key,)).fetchone()
        if row is None or not isinstance(row["pred"], bytes) or not isinstance(row["prob"], bytes):
            return None
        if len(row["prob"]) != 4 * len(row["pred"]):
            return None
        return np.frombuffer(row["pred"], dtype=np.uint8), np.frombuffer(row["prob"], dtype=np.float32)

    def delete(self, key: str) -> None:
        """Remove a run, its metrics, its weights and its name, notes and tags (an unreadable run too), with any
        retrain of it, in one transaction. A training of either that is still going is asked to stop, and keeps nothing when it
        ends (set_progress and finish find its row gone): deleting wins over training."""
        keys = (key, retrain_key(key))
        with self._transaction() as db:
            found = {k: db.execute("SELECT status, process, weights_file FROM runs WHERE key=?", (k,)).fetchone() for k in keys}
            for k in keys:
                for table in ("runs", *RUN_TABLES, *labels.TABLES):
                    db.execute(f"DELETE FROM {table} WHERE key=?", (k,))
        for k, row in found.items():
            if row is None:
                continue
            if row["status"] in Status.active() and alive(row["process"]) and RUN_KEY.fullmatch(k):
                stop_file(self, k).set()  # it stops within a step
            self.remove_unused_weights(
                row["weights_file"] if isinstance(row["weights_file"], str) else f"{base_key(k)}.safetensors"
            )
        if RUN_KEY.fullmatch(key):
            for extra in (self.home / "ood").glob(f"{key}.*"):  # its not-a-digit check (nnapp.ood)
                extra.unlink(missing_ok=True)
        if not self.readonly:
            self.prune_versions()  # the data set version it alone named

    def remove_unused_weights(self, name: str) -> bool:
        """Remove weights/NAME unless a run still points at it (a retrain that came out the same to the bit)."""
        with self._db() as db:
            used = db.execute(
                "SELECT 1 FROM runs WHERE weights_file=? OR (weights_file IS NULL AND key || '.safetensors'=?) LIMIT 1",
                (name, name),
            ).fetchone()
        if used or not ORPHAN.fullmatch(name):
            return False
        (self.home / "weights" / name).unlink(missing_ok=True)
        return True

    def remove_orphans(self) -> list[Path]:
        """Weights files no run points at (a writer killed between its file and its row, a retrain whose run was
        deleted) and not-a-digit checks of runs that are gone. Skipped while a writer is between a weights
        file and its row (it holds writing_weights); only names nnapp writes are touched."""
        removed = []
        with exclusive_lock_now(self.home / WEIGHTS_LOCK) as alone:
            if not alone:
                return removed
            with self._db() as db:
                rows = db.execute("SELECT key, weights_file FROM runs").fetchall()
            keys = {base_key(r["key"]) for r in rows if isinstance(r["key"], str)}
            kept = {r["weights_file"] for r in rows if isinstance(r["weights_file"], str)} | {f"{k}.safetensors" for k in keys}
            files = [p for p in (self.home / "weights").glob("*.safetensors") if ORPHAN.fullmatch(p.name)]
            files += [p for p in (self.home / "ood").glob("*.safetensors") if KEY.fullmatch(p.stem) and p.stem not in keys]
            for path in files:
                if path.parent.name == "ood" or path.name not in kept:
                    with contextlib.suppress(OSError):
                        path.unlink()
                        removed.append(path)
        return removed


def _add_process_columns(db) -> None:
    """The process column (who last wrote a row's status, nnapp.system.process.identity) on runs and tasks of a
    store from before it; another process opening the same old store may add it first."""
    for table in ("runs", "tasks"):
        if "process" not in {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}:
            try:
                db.execute(f"ALTER TABLE {table} ADD COLUMN process TEXT")
            except sqlite3.OperationalError as err:
                if "duplicate column" not in str(err):
                    raise


def _metrics(row) -> dict:
    """A metrics row with every value a number or None, whatever a damaged column holds."""
    return {k: v if isinstance(v, (int, float)) and not isinstance(v, bool) else None for k, v in dict(row).items()}
