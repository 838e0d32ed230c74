"""The run store: an SQLite database (WAL) of runs and their metrics, weights beside it as safetensors."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nnapp.config import RunConfig
from nnapp.database import READ_ONLY, Database, can_fall_back
from nnapp.drawings import Drawings
from nnapp.errors import StoreError
from nnapp.fields import KEY
from nnapp.files import atomic_write as _atomic_write
from nnapp.files import clean_temp_files, os_error_text
from nnapp.records import ACTIVE, STATUSES, FitResult, Run
from nnapp.rows import decode

if TYPE_CHECKING:
    import torch

SCHEMA = """
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
    parent TEXT
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
"""


def default_home() -> Path:
    return Path(os.environ.get("NNAPP_HOME") or "runs")


def pid_alive(pid: int | None) -> bool:
    if not isinstance(pid, int) or pid <= 0:  # 0 and negative pids name process groups, not a process
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


class Store(Drawings):
    """All reads and writes of runs. Each call opens its own short connection, so threads can share a Store.

    A store whose folder cannot be written is opened read-only (`readonly`): runs can be listed and shown,
    and a write says so in one sentence. Every SQLite or file-system failure is a StoreError.
    """

    def __init__(self, home: Path | str | None = None):
        self.home = Path(home) if home is not None else default_home()
        self.db_path = self.home / "runs.sqlite"
        self.database = Database(self.db_path)
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

    def _db(self):
        return self.database.connect()

    # --- runs ---------------------------------------------------------------------------------

    def mark_interrupted(self) -> int:
        """Runs left queued or running by a process that no longer exists become 'interrupted'."""
        with self._db() as db:
            marks = ", ".join("?" * len(ACTIVE))
            rows = db.execute(f"SELECT key, pid FROM runs WHERE status IN ({marks})", ACTIVE).fetchall()
            dead = [r["key"] for r in rows if not pid_alive(r["pid"])]
            for key in dead:
                db.execute(
                    "UPDATE runs SET status='interrupted', finished=?, message=? WHERE key=?",
                    (time.time(), "the process running it stopped before it finished", key),
                )
        return len(dead)

    def create(self, config: RunConfig, status: str = "queued", parent: str | None = None) -> str:
        """Insert (or reset) the run for `config`; its old metrics are cleared. Returns the key."""
        key = config.key()
        with self._db() as db:
            for table in ("epochs", "steps", "predictions"):
                db.execute(f"DELETE FROM {table} WHERE key=?", (key,))
            db.execute(
                "INSERT OR REPLACE INTO runs (key, config, status, created, pid, parent) VALUES (?, ?, ?, ?, ?, ?)",
                (key, config.to_json(), status, time.time(), os.getpid(), parent),
            )
        return key

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

    def finish(self, key: str, result: FitResult) -> None:
        """Store a FitResult: weights first (atomically), then the row that points at them."""
        sha = None
        if result.status == "done":
            sha = self._write_weights(key, result.state_dict)
        with self._db() as db:
            if result.predictions is not None:
                db.execute(
                    "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?)",
                    (key, result.predictions.astype(np.uint8).tobytes(), result.probabilities.astype(np.float32).tobytes()),
                )
            db.execute(
                "UPDATE runs SET status=?, finished=?, device=?, precision=?, message=?, test=?, train_seconds=?, weights_sha256=? WHERE key=?",
                (
                    result.status,
                    time.time(),
                    result.device,
                    result.precision,
                    result.message,
                    json.dumps(result.test) if result.test else None,
                    result.train_seconds,
                    sha,
                    key,
                ),
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
            rows = db.execute("SELECT * FROM runs WHERE key LIKE ? ESCAPE '\\' LIMIT 2", (pattern,)).fetchall()
        return decode(rows[0]) if len(rows) == 1 else None

    def runs(self, status: str | tuple[str, ...] | None = None) -> list[Run]:
        """Every run, newest first."""
        query, args = "SELECT * FROM runs", ()
        if status:
            statuses = (status,) if isinstance(status, str) else status
            query += f" WHERE status IN ({', '.join('?' * len(statuses))})"
            args = statuses
        with self._db() as db:
            rows = db.execute(query + " ORDER BY created DESC", args).fetchall()
        return [decode(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """Runs by status as they read (an unreadable row counts as 'unreadable')."""
        return dict(Counter(run.status for run in self.runs()))

    def epochs(self, key: str) -> list[dict]:
        with self._db() as db:
            return [_metrics(r) for r in db.execute("SELECT * FROM epochs WHERE key=? ORDER BY epoch", (key,))]

    def steps(self, key: str, max_rows: int | None = None) -> list[dict]:
        """Per-step metrics; with `max_rows`, every k-th step so that at most about that many come back."""
        with self._db() as db:
            if max_rows:
                count = db.execute("SELECT COUNT(*) FROM steps WHERE key=?", (key,)).fetchone()[0]
                every = max(1, -(-count // max_rows))
                rows = db.execute("SELECT * FROM steps WHERE key=? AND step % ? = 0 ORDER BY step", (key, every))
                return [_metrics(r) for r in rows]
            return [_metrics(r) for r in db.execute("SELECT * FROM steps WHERE key=? ORDER BY step", (key,))]

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
        """Remove a run, its metrics and its weights (an unreadable run too)."""
        with self._db() as db:
            for table in ("runs", "epochs", "steps", "predictions"):
                db.execute(f"DELETE FROM {table} WHERE key=?", (key,))
        if KEY.fullmatch(key):  # a damaged row's key names no file of ours
            self.weights_path(key).unlink(missing_ok=True)

    def add_run(self, run: Run, weights: bytes, epochs: list[dict], predictions: tuple[bytes, bytes] | None) -> None:
        """Store a finished run made elsewhere (an imported bundle): weights first, then its rows; never over a stored run."""
        if (existing := self.get(run.key)) is not None:
            raise StoreError(f"run {run.key} is already in the store ({existing.status}); delete it first to import it again")
        _atomic_write(self.weights_path(run.key), weights)
        row = {
            "key": run.key, "config": run.config.to_json(), "status": run.status, "created": run.created,
            "started": run.started, "finished": run.finished, "device": run.device, "precision": run.precision,
            "message": run.message, "test": json.dumps(run.test), "train_seconds": run.train_seconds,
            "weights_sha256": hashlib.sha256(weights).hexdigest(), "parent": run.parent,
        }  # fmt: skip
        with self._db() as db:
            db.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
            cells = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")
            db.executemany(
                "INSERT INTO epochs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(run.key, *(e[c] for c in cells)) for e in epochs]
            )
            if predictions:
                db.execute("INSERT INTO predictions VALUES (?, ?, ?)", (run.key, *predictions))

    # --- weights ------------------------------------------------------------------------------

    def weights_path(self, key: str) -> Path:
        if not KEY.fullmatch(key):
            raise StoreError(f"{key[:40]!r} is not a run key")
        return self.home / "weights" / f"{key}.safetensors"

    def _write_weights(self, key: str, state_dict: dict[str, torch.Tensor]) -> str:
        from safetensors.torch import save as save_safetensors  # torch: the CLI's list and show start without it

        blob = save_safetensors({k: v.contiguous() for k, v in state_dict.items()}, metadata={"key": key})
        _atomic_write(self.weights_path(key), blob)
        return hashlib.sha256(blob).hexdigest()

    def load_weights(self, key: str) -> dict[str, torch.Tensor]:
        """The stored weights, checked against the database's checksum before anything is parsed."""
        run = self.get(key)
        if run is None:
            raise StoreError(f"no run {key}")
        if not run.has_weights():
            raise StoreError(f"run {key} has no weights (status {run.status})")
        path = self.weights_path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"the weights of run {key} are missing ({path})") from None
        if hashlib.sha256(blob).hexdigest() != run.weights_sha256:
            raise StoreError(f"the weights of run {key} are corrupted: {path.name} fails its checksum")
        from safetensors.torch import load as load_safetensors  # torch: the CLI's list and show start without it

        try:
            return load_safetensors(blob)
        except Exception as err:  # safetensors raises its own error type for a damaged header
            raise StoreError(f"the weights of run {key} cannot be read: {path.name} is not a safetensors file") from err

    def load_model(self, key: str) -> tuple[torch.nn.Module, RunConfig]:
        """Rebuild the model from the stored config and load its weights (eval mode, CPU)."""
        from nnapp.models import build_model

        state = self.load_weights(key)  # first: it checks the run has weights and a readable config
        run = self.get(key)
        model = build_model(run.config)
        try:
            model.load_state_dict(state)
        except RuntimeError:
            raise StoreError(f"the weights of run {key} do not fit the network its config describes") from None
        return model.eval(), run.config


def _metrics(row: sqlite3.Row) -> dict:
    """A metrics row with every value a number or None, whatever a damaged column holds."""
    return {k: v if isinstance(v, (int, float)) and not isinstance(v, bool) else None for k, v in dict(row).items()}
