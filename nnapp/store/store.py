"""The run store: an SQLite database (WAL) of runs and their metrics, weights beside it as safetensors."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from nnapp.engine import datasets as catalogue
from nnapp.engine.config import RunConfig
from nnapp.engine.fields import RUN_KEY
from nnapp.engine.records import RETRAIN, FitResult, Run, base_key, retrain_key
from nnapp.engine.states import Status
from nnapp.store import comparable, histograms
from nnapp.store import datasets as own_datasets
from nnapp.store.claims import RUN_TABLES, Claims, _promote, _reset
from nnapp.store.comparable import ComparableLosses
from nnapp.store.database import READ_ONLY, Database, can_fall_back
from nnapp.store.datasets import DataSets
from nnapp.store.drawings import Drawings
from nnapp.store.histograms import Histograms
from nnapp.store.rows import decode
from nnapp.store.tasks import TaskTable
from nnapp.store.weights import WeightFiles
from nnapp.system.errors import StoreError
from nnapp.system.files import clean_temp_files, os_error_text
from nnapp.system.process import pid_alive

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
    + own_datasets.SCHEMA
)
NOT_RETRAIN = f"key NOT LIKE '%{RETRAIN}'"  # retrains in progress are not listed as runs of their own


def default_home() -> Path:
    return Path(os.environ.get("NNAPP_HOME") or "runs")


class Store(Claims, WeightFiles, Drawings, Histograms, ComparableLosses, DataSets):
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
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            if "weights_file" not in {r["name"] for r in db.execute("PRAGMA table_info(runs)")}:
                db.execute("ALTER TABLE runs ADD COLUMN weights_file TEXT")  # a store from before content-named weights

    def _db(self) -> AbstractContextManager:
        return self.database.connect()

    def _transaction(self) -> AbstractContextManager:
        return self.database.transaction()

    # --- runs ---------------------------------------------------------------------------------

    def mark_interrupted(self) -> int:
        """Runs and tasks left queued or running by a process that no longer exists become 'interrupted'."""
        active, dead = Status.active(), 0
        marks = ", ".join("?" * len(active))
        with self._db() as db:
            for table in ("runs", "tasks"):
                rows = db.execute(f"SELECT key, pid FROM {table} WHERE status IN ({marks})", active).fetchall()
                keys = [r["key"] for r in rows if not pid_alive(r["pid"])]
                for key in keys:
                    db.execute(
                        f"UPDATE {table} SET status=?, finished=?, message=? WHERE key=?",
                        (Status.INTERRUPTED, time.time(), "the process running it stopped before it finished", key),
                    )
                dead += len(keys)
        return dead

    def create(self, config: RunConfig, status: Status = Status.QUEUED, key: str | None = None) -> str:
        """Insert (or reset) the run for `config` under `key` (its own by default); old metrics are cleared."""
        key = key or config.key()
        with self._db() as db:
            _reset(db, config, key, status)
        return key

    def set_status(self, key: str, status: Status, message: str | None = None, **fields) -> None:
        values = {"status": Status(status), "pid": os.getpid(), **fields}
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
        if result.status == Status.DONE:
            sha, name = self.write_weights(key, result.state_dict)
        replaced = self.weights_path(base_key(key)) if key != base_key(key) and sha else None
        with self._db() as db:
            if result.predictions is not None:
                db.execute(
                    "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?)",
                    (key, result.predictions.astype(np.uint8).tobytes(), result.probabilities.astype(np.float32).tobytes()),
                )
            test = json.dumps(result.test) if result.test else None
            db.execute(
                "UPDATE runs SET status=?, finished=?, device=?, precision=?, message=?, test=?, train_seconds=?,"
                " weights_sha256=?, weights_file=? WHERE key=?",
                (result.status, time.time(), result.device, result.precision, result.message, test, result.train_seconds)
                + (sha, name, key),
            )
            if replaced is not None:
                _promote(db, key, base_key(key))
        if replaced is not None and replaced.name != name:
            replaced.unlink(missing_ok=True)

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

    def add_run(self, run: Run, weights: bytes, epochs: list[dict], predictions: tuple[bytes, bytes] | None) -> None:
        """Store a finished run made elsewhere (an imported bundle): weights first, then its rows; never over a stored run."""
        if (existing := self.get(run.key)) is not None:
            raise StoreError(f"run {run.key} is already in the store ({existing.status}); delete it first to import it again")
        sha, name = self.write_weights(run.key, weights)
        row = {
            "key": run.key, "config": run.config.to_json(), "status": run.status, "created": run.created,
            "started": run.started, "finished": run.finished, "device": run.device, "precision": run.precision,
            "message": run.message, "test": json.dumps(run.test), "train_seconds": run.train_seconds,
            "weights_sha256": sha, "parent": run.parent, "weights_file": name,
        }  # fmt: skip
        with self._db() as db:
            db.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
            cells = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")
            db.executemany(
                "INSERT INTO epochs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(run.key, *(e[c] for c in cells)) for e in epochs]
            )
            for e in epochs:
                self._write_unsmoothed(db, run.key, [], e)
            if predictions:
                db.execute("INSERT INTO predictions VALUES (?, ?, ?)", (run.key, *predictions))

    def delete(self, key: str) -> None:
        """Remove a run, its metrics and its weights (an unreadable run too), with any retrain of it."""
        for k in (key, retrain_key(key)):
            try:
                path = self.weights_path(k)
            except StoreError:  # a damaged row's key names no file of ours
                path = None
            with self._db() as db:
                for table in ("runs", *RUN_TABLES):
                    db.execute(f"DELETE FROM {table} WHERE key=?", (k,))
            if path is not None:
                path.unlink(missing_ok=True)
        if RUN_KEY.fullmatch(key):
            for extra in (self.home / "ood").glob(f"{key}.*"):  # its not-a-digit check (nnapp.ood)
                extra.unlink(missing_ok=True)
        if not self.readonly:
            self.prune_versions()  # the data set version it alone named


def _metrics(row) -> dict:
    """A metrics row with every value a number or None, whatever a damaged column holds."""
    return {k: v if isinstance(v, (int, float)) and not isinstance(v, bool) else None for k, v in dict(row).items()}
