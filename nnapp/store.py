"""The run store: an SQLite database (WAL) of runs and their metrics, weights beside it as safetensors."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nnapp.config import ConfigError, RunConfig
from nnapp.errors import StoreError
from nnapp.records import ACTIVE, STATUSES, FitResult, Run

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
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """All reads and writes of runs. Each call opens its own short connection, so threads can share a Store."""

    def __init__(self, home: Path | str | None = None):
        self.home = Path(home) if home is not None else default_home()
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "weights").mkdir(exist_ok=True)
        self.db_path = self.home / "runs.sqlite"
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
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
        with self._db() as db:
            row = db.execute("SELECT * FROM runs WHERE key=?", (key,)).fetchone()
        return _decode(row) if row else None

    def find(self, prefix: str) -> Run | None:
        """A run by its key or an unambiguous prefix of it."""
        with self._db() as db:
            rows = db.execute("SELECT * FROM runs WHERE key LIKE ? LIMIT 2", (prefix + "%",)).fetchall()
        return _decode(rows[0]) if len(rows) == 1 else None

    def runs(self, status: str | tuple[str, ...] | None = None) -> list[Run]:
        """Every run, newest first."""
        query, args = "SELECT * FROM runs", ()
        if status:
            statuses = (status,) if isinstance(status, str) else status
            query += f" WHERE status IN ({', '.join('?' * len(statuses))})"
            args = statuses
        with self._db() as db:
            rows = db.execute(query + " ORDER BY created DESC", args).fetchall()
        return [run for run in map(_decode, rows) if run is not None]

    def counts(self) -> dict[str, int]:
        with self._db() as db:
            return {r["status"]: r["n"] for r in db.execute("SELECT status, COUNT(*) AS n FROM runs GROUP BY status")}

    def epochs(self, key: str) -> list[dict]:
        with self._db() as db:
            return [dict(r) for r in db.execute("SELECT * FROM epochs WHERE key=? ORDER BY epoch", (key,))]

    def steps(self, key: str, max_rows: int | None = None) -> list[dict]:
        """Per-step metrics; with `max_rows`, every k-th step so that at most about that many come back."""
        with self._db() as db:
            if max_rows:
                count = db.execute("SELECT COUNT(*) FROM steps WHERE key=?", (key,)).fetchone()[0]
                every = max(1, -(-count // max_rows))
                rows = db.execute("SELECT * FROM steps WHERE key=? AND step % ? = 0 ORDER BY step", (key, every))
                return [dict(r) for r in rows]
            return [dict(r) for r in db.execute("SELECT * FROM steps WHERE key=? ORDER BY step", (key,))]

    def predictions(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        with self._db() as db:
            row = db.execute("SELECT pred, prob FROM predictions WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        return np.frombuffer(row["pred"], dtype=np.uint8), np.frombuffer(row["prob"], dtype=np.float32)

    def delete(self, key: str) -> None:
        with self._db() as db:
            for table in ("runs", "epochs", "steps", "predictions"):
                db.execute(f"DELETE FROM {table} WHERE key=?", (key,))
        self.weights_path(key).unlink(missing_ok=True)
        for extra in (self.home / "ood").glob(f"{key}.*"):  # its not-a-digit check (nnapp.ood)
            extra.unlink(missing_ok=True)

    # --- weights ------------------------------------------------------------------------------

    def weights_path(self, key: str) -> Path:
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

        return load_safetensors(blob)

    def load_model(self, key: str) -> tuple[torch.nn.Module, RunConfig]:
        """Rebuild the model from the stored config and load its weights (eval mode, CPU)."""
        from nnapp.models import build_model

        run = self.get(key)
        if run is None:
            raise StoreError(f"no run {key}")
        model = build_model(run.config)
        model.load_state_dict(self.load_weights(key))
        return model.eval(), run.config

    # --- personal handwriting -----------------------------------------------------------------

    def add_drawing(self, pixels: np.ndarray, label: int) -> int:
        """Save a 28×28 uint8 digit with its true label; returns its id."""
        arr = np.asarray(pixels, dtype=np.uint8)
        if arr.shape != (28, 28) or not 0 <= int(label) <= 9:
            raise ValueError("a drawing is 28×28 pixels with a label from 0 to 9")
        with self._db() as db:
            cur = db.execute(
                "INSERT INTO drawings (label, pixels, created) VALUES (?, ?, ?)", (int(label), arr.tobytes(), time.time())
            )
            return int(cur.lastrowid)

    def drawings(self) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """All saved drawings: images (N×28×28 uint8), labels (N), ids."""
        with self._db() as db:
            rows = db.execute("SELECT id, label, pixels FROM drawings ORDER BY id").fetchall()
        images = (
            np.stack([np.frombuffer(r["pixels"], dtype=np.uint8).reshape(28, 28) for r in rows])
            if rows
            else np.zeros((0, 28, 28), np.uint8)
        )
        return images, np.array([r["label"] for r in rows], dtype=np.int64), [r["id"] for r in rows]

    def delete_drawing(self, drawing_id: int) -> None:
        with self._db() as db:
            db.execute("DELETE FROM drawings WHERE id=?", (drawing_id,))


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
    )


def _atomic_write(path: Path, blob: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
