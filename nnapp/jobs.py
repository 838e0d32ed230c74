"""Background training: one job per config key, a FIFO queue, cancel, and status read from the store.

Each job trains in a process of its own, so the web server's threads, its GIL and its file
watching never slow the training loop down, and a crash in training cannot take the app with it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from nnapp.config import ConfigError, RunConfig
from nnapp.device import set_threads, training_threads
from nnapp.runs import run_and_store
from nnapp.store import Store, pid_alive

log = logging.getLogger(__name__)
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class StopFile:
    """A stop flag that another process can see: the file exists once stop is asked for."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)

    def set(self) -> None:
        self.path.touch()

    def is_set(self) -> bool:
        return self.path.exists()  # one stat() per training step: microseconds

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass
class Job:
    config: RunConfig
    key: str
    stop: StopFile
    parent: str | None = None


@dataclass(frozen=True)
class Submission:
    key: str
    state: str  # "cached": a finished run exists; "attached": already queued or running; "queued": new job


class JobManager:
    """Runs training jobs, each in a process of its own, `workers` at a time (one by default).

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
            run = self.store.get(key)  # first: a job's process writes "done" a moment before it exits
            if run is not None and run.is_finished() and not force:
                return Submission(key, "cached")
            if key in self._jobs:
                return Submission(key, "attached")
            if run is not None and run.is_active() and run.pid != os.getpid() and pid_alive(run.pid):
                return Submission(key, "attached")  # a training process left by an earlier server is still on it
            job = Job(config, key, stop=StopFile(self.store.home / "stop" / key), parent=config.init_from or None)
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
                job.stop.clear()
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
                self._run_process(job)
            except Exception:  # recorded as 'failed' with its message by the training process
                log.exception("run %s failed", job.key)
            finally:
                with self._cond:
                    self._running.discard(job.key)
                    self._jobs.pop(job.key, None)
                    self._cond.notify_all()

    def _run_process(self, job: Job) -> None:
        """Train in a fresh Python process (`python -m nnapp.jobs`), not a fork of the web server."""
        cmd = [sys.executable, "-m", "nnapp.jobs", str(self.store.home), str(job.stop.path)]
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, cwd=PACKAGE_ROOT, text=True)
            proc.communicate(job.config.to_json())
        finally:
            job.stop.clear()
        run = self.store.get(job.key)
        if run is not None and run.is_active():  # it died without a word: killed, out of memory, a crash
            code = proc.returncode
            reason = f"signal {-code}" if code < 0 else f"exit code {code}"
            self.store.set_status(job.key, "failed", message=f"the training process stopped unexpectedly ({reason})")


def main(argv: list[str]) -> int:
    """A training process: the config as JSON on stdin; arguments: the store's folder and the stop file."""
    home, stop_path = argv
    set_threads(training_threads())
    config = RunConfig.from_dict(json.loads(sys.stdin.read()))
    stop = Path(stop_path)
    store = Store(home)
    try:
        status = run_and_store(config, store, should_stop=stop.exists)
    except Exception as err:  # already recorded in the store as failed
        print(f"nnapp: run {config.key()} failed: {err}", file=sys.stderr)
        return 1
    if status == "done":
        make_check(store, config.key())
    return 0


def make_check(store: Store, key: str) -> None:
    """The run's not-a-digit check, made while the run is already usable, so the Playground finds it ready."""
    from nnapp import ood

    try:
        ood.ensure(store, key)
    except Exception as err:  # the run is fine without it; the Playground makes it when it is missing
        print(f"nnapp: the not-a-digit check of run {key} could not be made: {err}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
