"""Pruning seen from the training process: after each epoch but the last, wait for the sweep driver's verdict.

The driver alone talks to Optuna (trial.report, trial.should_prune): it reads the epoch's validation row from
the store (or from a Ray task's stream) and answers 'prune' or 'go'. The training waits for the answer, so a
trial is pruned at exactly the epoch Optuna names, and a driver that died never leaves it waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from nnapp.engine.states import Status
from nnapp.engine.train import Callback, Loop, Outcome
from nnapp.store.stops import stop_file
from nnapp.store.store import Store, pid_alive
from nnapp.sweep.files import verdict_path

POLL_S = 0.02


class Pruning(Callback):
    """Ends a run as 'pruned' when `verdict(epoch)` says so; its curves so far stay in the store."""

    def __init__(self, verdict: Callable[[int], bool]):
        self.verdict = verdict

    def __repr__(self) -> str:
        return f"Pruning({self.verdict!r})"

    def on_epoch_end(self, loop: Loop, row: dict) -> Outcome | None:
        epoch, epochs = row["epoch"], loop.config.epochs
        if epoch >= epochs or not self.verdict(epoch):
            return None
        return Outcome(
            Status.PRUNED, f"pruned by the sweep after epoch {epoch} of {epochs} (validation accuracy {row['val_acc']:.4f})"
        )


def file_pruning(store: Store, key: str, folder: str, driver: int) -> Pruning:
    """A job process's pruning (see runs.payload_callbacks): the driver, process `driver`, writes
    FOLDER/KEY.EPOCH as 'prune' or 'go'. A stop request or a dead driver means 'go' (no pruning)."""
    stop = stop_file(store, key)

    def verdict(epoch: int) -> bool:
        path = verdict_path(folder, key, epoch)
        while not path.exists():
            if stop.is_set() or not pid_alive(driver):
                return False
            time.sleep(POLL_S)
        return path.read_bytes() == b"prune"

    return Pruning(verdict)
