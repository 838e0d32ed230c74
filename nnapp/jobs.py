"""Background training: one job per config key, a FIFO queue, cancel, and status read from the store."""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field

from nnapp.config import ConfigError, RunConfig
from nnapp.store import FINISHED, Store
from nnapp.train import run_and_store

log = logging.getLogger(__name__)


@dataclass
class Job:
    config: RunConfig
    key: str
    stop: threading.Event = field(default_factory=threading.Event)
    parent: str | None = None


@dataclass(frozen=True)
class Submission:
    key: str
    state: str  # "cached": a finished run exists; "attached": already queued or running; "queued": new job


class JobManager:
    """Runs training jobs in background threads, `workers` at a time (one by default).

    Create one per process (the app keeps it in st.cache_resource) so every browser tab shares it:
    two tabs launching the same config get one training.
    """

    def __init__(self, store: Store, workers: int = 1):
        self.store = store
        self._cond = threading.Condition()
        self._queue: deque[Job] = deque()
        self._jobs: dict[str, Job] = {}  # queued or running, by key
        self._running: set[str] = set()
        self._threads = [threading.Thread(target=self._work, name=f"nnapp-worker-{i}", daemon=True) for i in range(workers)]
        self._closed = False
        for t in self._threads:
            t.start()

    def __repr__(self) -> str:
        return f"JobManager({self.store!r}, queued={len(self._queue)}, running={sorted(self._running)})"

    def submit(self, config: RunConfig, force: bool = False) -> Submission:
        """Queue `config` unless it finished before (cached) or is queued or running now (attached)."""
        problems = config.validate()
        if problems:
            raise ConfigError(problems)
        key = config.key()
        with self._cond:
            if key in self._jobs:
                return Submission(key, "attached")
            run = self.store.get(key)
            if run is not None and run.status in FINISHED and not force:
                return Submission(key, "cached")
            job = Job(config, key, parent=config.init_from or None)
            self.store.create(config, status="queued", parent=job.parent)
            self._jobs[key] = job
            self._queue.append(job)
            self._cond.notify()
        return Submission(key, "queued")

    def cancel(self, key: str) -> bool:
        """Stop a running job (within a training step) or drop a queued one; the run is marked cancelled."""
        with self._cond:
            job = self._jobs.get(key)
            if job is None:
                return False
            job.stop.set()
            if key not in self._running:
                self._queue.remove(job)
                del self._jobs[key]
                self.store.set_status(key, "cancelled", message="cancelled before it started")
        return True

    def is_active(self, key: str) -> bool:
        with self._cond:
            return key in self._jobs

    def active(self) -> list[str]:
        """Keys of running jobs, then queued ones in order."""
        with self._cond:
            return [k for k in self._jobs if k in self._running] + [j.key for j in self._queue]

    def position(self, key: str) -> int | None:
        """0 while running, n for the n-th in the queue, None when not active."""
        with self._cond:
            if key in self._running:
                return 0
            for i, job in enumerate(self._queue, start=1):
                if job.key == key:
                    return i
        return None

    def wait(self, key: str, timeout: float | None = None) -> bool:
        """Block until the job for `key` is no longer active; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: key not in self._jobs, timeout)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel everything and stop the workers."""
        with self._cond:
            self._closed = True
            for key in list(self._jobs):
                self._jobs[key].stop.set()
            self._cond.notify_all()
        for key in [j.key for j in list(self._queue)]:
            self.cancel(key)
        for t in self._threads:
            t.join(timeout)

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if self._closed:
                    return
                job = self._queue.popleft()
                self._running.add(job.key)
            try:
                run_and_store(job.config, self.store, should_stop=job.stop.is_set)
            except Exception:  # recorded as 'failed' with its message by run_and_store
                log.exception("run %s failed", job.key)
            finally:
                with self._cond:
                    self._running.discard(job.key)
                    self._jobs.pop(job.key, None)
                    self._cond.notify_all()
