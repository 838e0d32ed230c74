"""Runs made elsewhere and imported from a bundle: their rows written in one transaction with their weights,
and what the bundle carried (curves, histograms, the not-a-digit check) and what import found, so that the
pages say the truth about an imported run ("its bundle did not carry histograms", not "trained before nnapp
recorded them")."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from nnapp.system.errors import StoreError

if TYPE_CHECKING:
    from nnapp.engine.records import Run

SCHEMA = """
CREATE TABLE IF NOT EXISTS imports (
    key TEXT PRIMARY KEY, imported REAL NOT NULL, origin TEXT NOT NULL
);
"""
EPOCH_CELLS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")
STEP_CELLS = ("step", "epoch", "loss", "acc", "lr", "samples_per_s", "elapsed")


class Imports:
    """The imports part of Store: `_transaction`, `write_weights`, `writing_weights` and `_write_unsmoothed` come from it."""

    def add_run(
        self,
        run: Run,
        weights: bytes,
        epochs: list[dict],
        predictions: tuple[bytes, bytes] | None,
        steps: list[dict] = (),
        histograms: list[dict] = (),
        origin: dict | None = None,
    ) -> None:
        """Store a finished run made elsewhere (an imported bundle): its weights, then its rows in one
        transaction, never over a stored run. `origin`: what the bundle carried and what import found."""
        with self.writing_weights():  # the file and the row that points at it, as one for remove_orphans
            sha, name = self.write_weights(run.key, weights)
            try:
                with self._transaction() as db:
                    if (existing := db.execute("SELECT status FROM runs WHERE key=?", (run.key,)).fetchone()) is not None:
                        raise StoreError(
                            f"run {run.key} is already in the store ({existing['status']}); delete it first to import it again"
                        )
                    _insert_run(db, run, sha, name)
                    self._insert_metrics(db, run.key, epochs, steps, histograms)
                    if predictions:
                        db.execute("INSERT INTO predictions VALUES (?, ?, ?)", (run.key, *predictions))
                    db.execute("INSERT INTO imports VALUES (?, ?, ?)", (run.key, time.time(), json.dumps(origin or {})))
            except StoreError:
                self.remove_unused_weights(name)  # the stored run's own file (the same bytes) is kept
                raise

    def _insert_metrics(self, db, key: str, epochs: list[dict], steps: list[dict], histograms: list[dict]) -> None:
        db.executemany(
            "INSERT INTO epochs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(key, *(e[c] for c in EPOCH_CELLS)) for e in epochs]
        )
        db.executemany("INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(key, *(s[c] for c in STEP_CELLS)) for s in steps])
        self._write_unsmoothed(db, key, list(steps), None)
        for e in epochs:
            self._write_unsmoothed(db, key, [], e)
        db.executemany(
            "INSERT INTO histograms VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (key, h["epoch"], h["layer"], h["kind"], h["position"], h["lo"], h["hi"], h["norm"], json.dumps(h["counts"]))
                for h in histograms
            ],
        )

    def imported(self, key: str) -> dict | None:
        """For a run imported from a bundle: when, and its origin (the bundle's format version, what it carried
        and did not: "per-step curves", "histograms", "not-a-digit check"; notes import made); else None."""
        try:
            with self._db() as db:
                row = db.execute("SELECT imported, origin FROM imports WHERE key=?", (key,)).fetchone()
        except StoreError:  # a read-only store from before imports were recorded
            return None
        if row is None:
            return None
        try:
            origin = json.loads(row["origin"])
        except (TypeError, ValueError):
            origin = {}
        return {**(origin if isinstance(origin, dict) else {}), "imported": row["imported"]}


def _insert_run(db, run: Run, sha: str, name: str) -> None:
    row = {
        "key": run.key, "config": run.config.to_json(), "status": run.status, "created": run.created,
        "started": run.started, "finished": run.finished, "device": run.device, "precision": run.precision,
        "message": run.message, "test": json.dumps(run.test), "train_seconds": run.train_seconds,
        "weights_sha256": sha, "parent": run.parent, "weights_file": name, "owner": run.owner,
    }  # fmt: skip
    db.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
