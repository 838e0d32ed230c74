"""Background jobs: training runs and other tasks, a fair queue (people in turn: nnapp.jobs.fairqueue), cancel;
their state lives in the store.

Each job runs in a process of its own, so the web server's threads, its GIL and its file watching never
slow training down, and a crash or a cancel ends that job alone. The processes are started ahead of
need (WarmPool): torch imported and MNIST loaded before anyone clicks, so a launch starts training at
once instead of after seconds of start-up.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import select
import subprocess
import threading
import time
from dataclasses import dataclass, field

from nnapp.engine.checks import Checked, trainable
from nnapp.engine.config import RunConfig
from nnapp.engine.people import machine_user
from nnapp.engine.records import Claim, base_key
from nnapp.engine.states import ClaimState, Status, TaskKind
from nnapp.jobs.fairqueue import Estimates, FairQueue, QueueEntry
from nnapp.jobs.warmpool import close_word, warm_pool
from nnapp.store.stops import StopFile, stop_file
from nnapp.store.store import Store
from nnapp.system.errors import StoreError

log = logging.getLogger(__name__)
# A worker waits for its job's process to say ENDED (or to exit), looking at the job's record at least this
# often meanwhile (the server's CPU is the training's); where a pipe cannot be waited on (Windows), every POLL_S.
WORD_WAIT_S = 1.0
POLL_S = 0.1


@dataclass
class Job:
    kind: TaskKind
    key: str  # the run's key (or its retrain's), or the task's
    payload: dict
    stop: StopFile
    threads: int | None = None  # torch threads of its process; None: every CPU it may use
    owner: str = ""  # who asked for it: its turn in the queue is theirs
    seq: int = 0  # arrival order
    process: subprocess.Popen | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Submission:
    key: str  # the key to follow: the run's, its retrain's, or the task's
    state: ClaimState  # CACHED: finished before; ATTACHED: someone is on it already; QUEUED: a new job


class JobManager:
    """Runs jobs `workers` at a time (one by default), each in a process of its own, people served in turn.

    Create one per process and store (the app keeps it in st.cache_resource) so every browser tab shares
    it. Who trains a config is decided in the store (Store.claim), so two tabs, two servers or the app and
    the CLI launching the same config get one training.
    """

    def __init__(self, store: Store, workers: int = 1, threads: int | None = None):
        self.store = store
        self.threads = threads
        self._cond = threading.Condition()
        self._queue = FairQueue()
        self._arrivals = itertools.count()
        self._jobs: dict[str, Job] = {}  # queued or running, by key
        self._running: set[str] = set()
        self._threads = [threading.Thread(target=self._work, name=f"nnapp-worker-{i}", daemon=True) for i in range(workers)]
        self._closed = False
        self._finishing: list[subprocess.Popen] = []  # processes whose job has ended, still making its check
        for t in self._threads:
            t.start()

    def __repr__(self) -> str:
        return f"JobManager({self.store!r}, queued={len(self._queue)}, running={sorted(self._running)})"

    def spares(self) -> int:
        """Job processes to keep ready for the next launches: one per worker (a sweep keeps no more than it
        has trials left to start)."""
        return len(self._threads)

    def warm(self) -> None:
        """Have a job process ready before the next launch (call it where a launch is likely); not while
        this manager's jobs run: they are refilled as they end, and warming up would slow them."""
        if not self.active():
            warm_pool().fill(1)

    def submit(
        self,
        config: Checked | RunConfig,
        force: bool = False,
        callbacks: list[dict] | None = None,
        check: bool = True,
        owner: str | None = None,
    ) -> Submission:
        """Queue `config` as `owner`'s (the machine's user by default) unless it finished before (cached) or
        someone is training it now (attached).

        A Checked config is not checked again (a RunConfig is checked here: nnapp.engine.checks.trainable).
        `callbacks` name training callbacks to build in the job's process (nnapp.tasks.run.CALLBACKS);
        `check=False` leaves the not-a-digit check to whoever first needs it (a sweep's trials)."""
        config = trainable(config, self.store.get)
        payload = {
            "config": config.to_dict(),
            **({"callbacks": callbacks} if callbacks else {}),
            **({} if check else {"check": False}),
        }
        owner = owner or machine_user()
        return self._submit(TaskKind.TRAIN, self.store.claim(config, force=force, owner=owner), payload, owner)

    def submit_task(self, kind: str, key: str, payload: dict, force: bool = False, owner: str | None = None) -> Submission:
        """Queue a task (a kind in nnapp.tasks.TASKS) as `owner`'s unless it is done (cached) or running (attached)."""
        owner = owner or machine_user()
        return self._submit(kind, self.store.tasks.claim(kind, key, payload, force=force, owner=owner), payload, owner)

    def _submit(self, kind: str, claim: Claim, payload: dict, owner: str) -> Submission:
        if claim.state != ClaimState.CLAIMED:
            return Submission(claim.key, claim.state)
        with self._cond:
            stop = stop_file(self.store, claim.key)
            stop.clear()
            job = Job(kind, claim.key, payload, stop, self.threads, owner=owner, seq=next(self._arrivals))
            self._jobs[claim.key] = job
            self._queue.append(job)
            self._cond.notify()
        return Submission(claim.key, ClaimState.QUEUED)

    def cancel(self, key: str) -> bool:
        """Stop a running job (within a training step) or drop a queued one. A run this manager does not
        own (trained by the CLI or another server) gets the stop request too. False when nothing is active."""
        with self._cond:
            job = self._jobs.get(key)
            if job is not None and key not in self._running:
                self._queue.remove(job)
                del self._jobs[key]
                self._cond.notify_all()
                self._set_cancelled(job)
                return True
        run = self.store.get(key)
        task = self.store.tasks.get(key) if run is None else None
        if job is None and not ((run and run.is_active()) or (task and task.is_active())):
            return False
        stop_file(self.store, key).set()
        return True

    def _set_cancelled(self, job: Job) -> None:
        message = "cancelled before it started"
        if job.kind == TaskKind.TRAIN:
            self.store.set_status(job.key, Status.CANCELLED, message=message)
        else:
            self.store.tasks.set(job.key, status=Status.CANCELLED, message=message)

    def is_active(self, key: str) -> bool:
        with self._cond:
            return key in self._jobs

    def active(self) -> list[str]:
        """Keys of running jobs, then queued ones in the order they will be served."""
        busy = self._busy_elsewhere() if self._queue else {}
        with self._cond:
            return [k for k in self._jobs if k in self._running] + [j.key for j in self._queue.order(busy)]

    def position(self, key: str) -> int | None:
        """0 while running, n for the n-th in the queue, None when not active."""
        busy = self._busy_elsewhere() if self._queue else {}
        with self._cond:
            if key in self._running:
                return 0
            for i, job in enumerate(self._queue.order(busy), start=1):
                if job.key == key:
                    return i
        return None

    def owner(self, key: str) -> str | None:
        """Who asked for the active job `key` (None when it is not active here)."""
        with self._cond:
            job = self._jobs.get(key)
            return job.owner if job is not None else None

    def queue(self) -> list[QueueEntry]:
        """Every active job: the running ones (position 0), then the waiting ones in the order they will be
        served, each with its owner and an estimated start."""
        busy = self._busy_elsewhere() if self._queue else {}
        with self._cond:
            running = [self._jobs[k] for k in self._jobs if k in self._running]
            waiting = self._queue.order(busy)
        estimates = Estimates(self.store)
        left = [estimates.left(job.kind, job.key) for job in running]
        out = [QueueEntry(j.key, j.kind, j.owner, 0, 0.0, _what(j)) for j in running]
        return out + estimates.starts([(j.key, j.kind, j.owner, _config(j)) for j in waiting], left)

    def _busy_elsewhere(self) -> dict[str, int]:
        """Runs training now that this manager does not run, by owner (a sweep's trials, another server's):
        their owner's turn here waits behind people who have nothing running."""
        try:
            busy = self.store.running_owners()
        except StoreError:  # an unreadable store: turns in plain rotation
            return {}
        for key in list(self._running):
            if (job := self._jobs.get(key)) is not None and busy.get(job.owner):
                busy[job.owner] -= 1
        return busy

    def wait(self, key: str, timeout: float | None = None) -> bool:
        """Block until the job for `key` is no longer active; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: key not in self._jobs, timeout)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel everything and stop the workers."""
        with self._cond:
            self._closed = True
            queued = self._queue.clear()
            for job in self._jobs.values():
                job.stop.set()
            self._cond.notify_all()
        for job in queued:
            self._jobs.pop(job.key, None)
            self._set_cancelled(job)
        for t in self._threads:
            t.join(timeout)

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if self._closed:
                    return
                job = self._queue.pop(self._busy_elsewhere())
                self._running.add(job.key)
            try:
                self._run_process(job)
            except Exception:  # recorded as 'failed' with its message by the job's process
                log.exception("job %s failed", job.key)
            finally:
                with self._cond:
                    self._running.discard(job.key)
                    self._jobs.pop(job.key, None)
                    self._cond.notify_all()

    def _record_active(self, job: Job) -> bool:
        record = self.store.get(job.key) if job.kind == TaskKind.TRAIN else self.store.tasks.get(job.key)
        return record is not None and record.is_active()

    def _ended(self, job: Job) -> bool:
        """Whether the job's work is over by its record (its process may still make the check): finished,
        or a retrain promoted into its run. A record gone or unreadable otherwise: the process decides."""
        try:
            record = self.store.get(job.key) if job.kind == TaskKind.TRAIN else self.store.tasks.get(job.key)
            if record is None and job.kind == TaskKind.TRAIN and job.key != base_key(job.key):
                record = self.store.get(base_key(job.key))  # a retrain that succeeded has become its run
                return record is not None and record.is_finished()
        except StoreError:
            return False
        return record is not None and not record.is_active()

    def _run_process(self, job: Job) -> None:
        """Hand the job to a warm process and wait for it; a process that dies silently marks it failed."""
        request = {"kind": job.kind, "key": job.key, "payload": job.payload, "home": str(self.store.home)}
        request.update(stop=str(job.stop.path), threads=job.threads)
        self._finishing = [p for p in self._finishing if p.poll() is None]
        job.process = warm_pool().take()
        with self._cond:
            behind = bool(self._queue)
        if behind:  # the next job will want a process as soon as this one ends
            warm_pool().fill(1)
        try:
            with contextlib.suppress(OSError):  # a process that died while it waited: found below
                job.process.stdin.write(json.dumps(request))
                job.process.stdin.close()
            while job.process.poll() is None and not self._ended(job):
                _await_word(job.process)
        finally:
            job.stop.clear()
            close_word(job.process)
        if job.process.poll() is None:  # the job has ended; its process makes the not-a-digit check (nice 10)
            self._finishing.append(job.process)
        warm_pool().fill(self.spares())  # ready for the next launch, now that the cores are free
        if self._record_active(job):  # it died without a word: killed, out of memory, a crash
            code = job.process.returncode
            reason = f"signal {-code}" if code < 0 else f"exit code {code}"
            message = f"the {'training ' if job.kind == TaskKind.TRAIN else ''}process stopped unexpectedly ({reason})"
            if job.kind == TaskKind.TRAIN:
                self.store.set_status(job.key, Status.FAILED, message=message)
            else:
                self.store.tasks.set(job.key, status=Status.FAILED, message=message)


def _config(job: Job) -> RunConfig | None:
    if job.kind != TaskKind.TRAIN:
        return None
    try:
        return RunConfig.from_dict(job.payload["config"])
    except (KeyError, ValueError):
        return None


def _what(job: Job) -> str:
    config = _config(job)
    return config.describe() if config is not None else str(job.kind).replace("_", " ")


def _await_word(process: subprocess.Popen) -> None:
    """Until the job's process says ENDED, exits, or WORD_WAIT_S passes."""
    if process.stdout is None or os.name == "nt":
        time.sleep(POLL_S)
        return
    try:
        ready, _, _ = select.select([process.stdout], [], [], WORD_WAIT_S)
        if ready and not process.stdout.readline():  # the pipe's end: the process has closed it and is ending
            process.wait(WORD_WAIT_S)
    except (OSError, ValueError, subprocess.TimeoutExpired):  # a closed pipe, a process still making its check
        time.sleep(POLL_S)
