"""What a task's function sees while it runs: a way to report progress and to see a stop request."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nnapp.store.store import Store


class TaskHandle:
    """report(done, total, text) writes the task's progress; should_stop() says whether a stop was asked for."""

    def __init__(self, store: Store, key: str, should_stop: Callable[[], bool] | None = None):
        self.store, self.key, self._should_stop = store, key, should_stop
        self._last = 0.0

    def __repr__(self) -> str:
        return f"TaskHandle({self.key!r})"

    def report(self, done: int, total: int, text: str = "", every: float = 0.25) -> None:
        now = time.monotonic()
        if now - self._last >= every or done >= total:
            self._last = now
            self.store.tasks.set(self.key, progress={"done": done, "total": total, "text": text})

    def should_stop(self) -> bool:
        return bool(self._should_stop and self._should_stop())
