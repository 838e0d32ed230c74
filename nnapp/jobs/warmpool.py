"""Job processes started ahead of need: torch and the training code imported and MNIST decoded before
anyone clicks, so a launch starts training at once (nnapp.jobs hands each one a job)."""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class WarmPool:
    """Job processes started ahead of need, each waiting on its stdin for the one job it will run.

    Taking one does not start its replacement: warming up (torch, the data set) costs a core for
    seconds, which the training just handed out needs. The job manager refills the pool once a job's
    training has ended. A spare started under other environment variables than the process has now
    (NNAPP_MEMORY_LIMIT, NNAPP_DATA…) is not used: it would run the job under the old ones.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._spares: list[subprocess.Popen] = []
        self._started_with: dict[int, dict[str, str]] = {}  # pid -> the environment it was started with

    def __repr__(self) -> str:
        return f"WarmPool(spares={len(self._spares)})"

    def fill(self, size: int = 1) -> None:
        with self._lock:
            self._prune()
            while len(self._spares) < size:
                self._spares.append(self._start())

    def take(self) -> subprocess.Popen:
        with self._lock:
            self._prune()
            process = self._spares.pop(0) if self._spares else self._start()
            self._started_with.pop(process.pid, None)
            return process

    def _start(self) -> subprocess.Popen:
        process = _start_process()
        self._started_with[process.pid] = dict(os.environ)
        return process

    def _prune(self) -> None:
        """Keep the spares that are alive and were started under the environment of now."""
        now, kept = dict(os.environ), []
        for p in self._spares:
            if p.poll() is None and self._started_with.get(p.pid) == now:
                kept.append(p)
            else:
                p.kill()
                close_word(p)
                self._started_with.pop(p.pid, None)
        self._spares = kept

    def pids(self) -> list[int]:
        """The spare processes waiting for a job."""
        with self._lock:
            return [p.pid for p in self._spares if p.poll() is None]

    def close(self) -> None:
        with self._lock:
            for p in self._spares:
                p.kill()
                close_word(p)
            self._spares, self._started_with = [], {}


def _start_process() -> subprocess.Popen:
    """`python -m nnapp.tasks`: a fresh interpreter (not a fork of the web server) that warms up, then waits.

    Its stdout is the pipe it says ENDED on once its job's work is over (nnapp.jobprocess.main: what the job
    prints goes to stderr), so its job manager waits on that pipe instead of reading the store ten times a
    second: CPU a training beside it needs."""
    cmd = [sys.executable, "-m", "nnapp.tasks"]
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=PACKAGE_ROOT, text=True)


ENDED = "ended\n"  # what a job process writes on its stdout when its job is over (its check may follow)


def close_word(process: subprocess.Popen) -> None:
    """Close this side of the process's ENDED pipe (a process that is done with, or never used)."""
    if process.stdout is not None:
        process.stdout.close()


_pool: WarmPool | None = None
_pool_lock = threading.Lock()


def warm_pool() -> WarmPool:
    """The process-wide pool: every job manager of this process shares its spares."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = WarmPool()
            atexit.register(_pool.close)
        return _pool
