"""Processes: whether one is alive, and how nnapp's own end (the CLI, job processes); no torch import."""

from __future__ import annotations

import os
import sys


def exit_now(code: int) -> None:
    """End this process without the interpreter's teardown. With torch loaded, collecting every object at
    exit takes 0.5-3 s of CPU; everything nnapp writes is on disk by then (each store write is its own
    transaction, weights are fsynced). Not where Ray is loaded: its clean-up runs at exit."""
    if "ray" in sys.modules:
        sys.exit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def pid_alive(pid: int | None) -> bool:
    if not isinstance(pid, int) or pid <= 0:  # 0 and negative pids name process groups, not a process
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True
