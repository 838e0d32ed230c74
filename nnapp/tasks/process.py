"""A job process, as `python -m nnapp.tasks` (nnapp.jobs.warmpool starts them): torch imported and MNIST decoded before
its job arrives, then the one job its manager sends on stdin; it says ENDED on stdout once the job is over."""

from __future__ import annotations

import contextlib
import json
import os
import select
import sys
from pathlib import Path

from nnapp.engine.records import base_key
from nnapp.engine.states import ClaimState, Status, TaskKind
from nnapp.jobs.warmpool import ENDED
from nnapp.store.store import Store
from nnapp.system.compat import keep_freed_memory
from nnapp.system.process import note_machine


def main() -> int:
    """A job process: warm up, then run the one job that arrives on stdin as JSON (nothing: just exit).

    Its stdout is its job manager's ENDED pipe (warmpool): what it prints goes to stderr instead."""
    word = os.fdopen(os.dup(1), "w")  # closed when the process exits, if not before: its manager sees either
    _stdout_to_stderr()
    keep_freed_memory()
    from nnapp.engine.data import load
    from nnapp.engine.device import set_threads, training_threads
    from nnapp.tasks.run import run_task

    load("mnist")  # the bundled data set, decoded before the job arrives
    text = _wait_for_request()
    if not text.strip():
        return 0
    request = json.loads(text)
    set_threads(request.get("threads") or training_threads())
    stop = Path(request["stop"])
    store = Store(request["home"])
    try:
        status = run_task(request["kind"], request["key"], request["payload"], store, should_stop=stop.exists)
    except Exception as err:  # already recorded in the store as failed
        print(f"nnapp: job {request['key']} failed: {err}", file=sys.stderr)
        return 1
    with contextlib.suppress(OSError):  # a manager gone meanwhile
        word.write(ENDED)  # the job is over for its manager: the next job may start while this one makes its check
        word.close()
    if request["kind"] == TaskKind.TRAIN and status == Status.DONE and request["payload"].get("check", True):
        set_threads(1)
        _lower_priority()  # the run is usable now; the next job's training comes first
        make_check(store, base_key(request["key"]))
    return 0


def _stdout_to_stderr() -> None:
    """Whatever the job prints goes where its stderr goes (nowhere, where that was closed), a line at a time."""
    try:
        os.dup2(2, 1)
    except OSError:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)


def _wait_for_request() -> str:
    """The job's request on stdin. While it waits, the process notes the machine's CPU use each second, so
    the job's first threads come from what the machine had to spare just before it (process.note_machine)."""
    while True:
        note_machine()
        try:
            ready, _, _ = select.select([sys.stdin], [], [], 1.0)
        except (OSError, ValueError):  # a stdin select cannot wait on (Windows): read it at once
            ready = True
        if ready:
            return sys.stdin.read()


def _lower_priority() -> None:
    """Nice 10 for every thread of this process (on Linux, nice is per thread: torch's stay as they were)."""
    try:
        for tid in os.listdir("/proc/self/task"):
            os.setpriority(os.PRIO_PROCESS, int(tid), 10)
    except (OSError, AttributeError):
        with contextlib.suppress(OSError):
            os.nice(10)


def make_check(store: Store, key: str) -> None:
    """The run's not-a-digit check, made while the run is already usable, so the Playground finds it ready.
    It is made as the "not_a_digit" task of the run's weights: a page asking for it meanwhile attaches."""
    from nnapp.predict import ood
    from nnapp.tasks.run import run_task

    try:
        run = store.get(key)
        if run is None or not run.has_weights() or not ood.available(run.config):
            return
        if ood.load_stats(store, key) is not None:  # a retrain that came out the same to the bit: made already
            return
        task, payload = ood.task_key(run), {"key": key}
        if store.tasks.claim(TaskKind.NOT_A_DIGIT, task, payload, force=True).state == ClaimState.CLAIMED:
            run_task(TaskKind.NOT_A_DIGIT, task, payload, store)
    except Exception as err:  # the run is fine without it; the Playground makes it when it is missing
        print(f"nnapp: the not-a-digit check of run {key} could not be made: {err}", file=sys.stderr)
