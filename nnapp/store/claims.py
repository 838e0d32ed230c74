"""Who trains a config, decided once across every process; and a retrain that replaces its run only when done."""

from __future__ import annotations

import os
import time

from nnapp.engine import datasets
from nnapp.engine.config import RunConfig
from nnapp.engine.people import machine_user
from nnapp.engine.records import Claim, Run, retrain_key
from nnapp.engine.states import ClaimState, Status
from nnapp.store import comparable
from nnapp.store.rows import decode
from nnapp.system.process import identity

RUN_TABLES = ("epochs", "steps", "predictions", *comparable.TABLES, "histograms", "imports")  # a run's rows besides its own


class Claims:
    """The claiming part of Store: `self._transaction()` comes from it."""

    def claim(self, config: RunConfig, force: bool = False, owner: str | None = None) -> Claim:
        """Decide, once across every process, who trains `config`.

        'cached' when it finished before (and not `force`); 'attached' when a live process is training it
        (the very process that wrote its row, not another one that was given its pid since)
        (or, with `force`, retraining it); else 'claimed': a queued row now exists for this caller to train.
        A forced retrain of a finished run is claimed under retrain_key(key): the finished run stays
        untouched until the retrain succeeds (see finish). A new row records `owner` (the machine's user by
        default) as who launched it; a cached or attached claim leaves the first launcher's name as it is.
        A data set of yours is frozen first: the version the config names gets its file of images
        (nnapp.store.datasets), or DataError if it has changed since."""
        owner = owner or machine_user()
        key = config.key()
        if datasets.is_ref(config.dataset):
            self.freeze(config.dataset)
        with self._transaction() as db:
            run = _fetch(db, key)
            if run is not None and run.is_live():
                return Claim(key, ClaimState.ATTACHED)
            if run is None or not run.is_finished():
                _reset(db, config, key, Status.QUEUED, owner)
                return Claim(key, ClaimState.CLAIMED)
            if not force:
                return Claim(key, ClaimState.CACHED)
            retrain = _fetch(db, retrain_key(key))
            if retrain is not None and retrain.is_live():
                return Claim(retrain.key, ClaimState.ATTACHED)
            _reset(db, config, retrain_key(key), Status.QUEUED, owner)
            return Claim(retrain_key(key), ClaimState.CLAIMED)


def _fetch(db, key: str) -> Run | None:
    row = db.execute("SELECT * FROM runs WHERE key=?", (key,)).fetchone()
    return decode(row) if row else None


def _reset(db, config: RunConfig, key: str, status: str, owner: str | None = None) -> None:
    """A fresh row for `key`, without the metrics of whatever ran under it before."""
    for table in RUN_TABLES:
        db.execute(f"DELETE FROM {table} WHERE key=?", (key,))
    db.execute(
        "INSERT OR REPLACE INTO runs (key, config, status, created, pid, process, parent, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (key, config.to_json(), status, time.time(), os.getpid(), identity(), config.init_from or None, owner),
    )


def _promote(db, retrain: str, key: str) -> None:
    """The finished retrain becomes the run: its row and metrics move to `key`, replacing the old ones; the
    run keeps the name of whoever launched it first."""
    first = db.execute("SELECT owner FROM runs WHERE key=?", (key,)).fetchone()
    for table in ("runs", *RUN_TABLES):
        db.execute(f"DELETE FROM {table} WHERE key=?", (key,))
        db.execute(f"UPDATE {table} SET key=? WHERE key=?", (key, retrain))
    if first is not None and first["owner"]:
        db.execute("UPDATE runs SET owner=? WHERE key=?", (first["owner"], key))
