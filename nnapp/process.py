"""Processes: whether one is alive, how nnapp's own end (the CLI, job processes), how a training process keeps
its memory, and the machine's CPU use as the thread governor reads it; no torch import."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
import time


def exit_now(code: int) -> None:
    """End this process without the interpreter's teardown. With torch loaded, collecting every object at
    exit takes 0.5-3 s of CPU; everything nnapp writes is on disk by then (each store write is its own
    transaction, weights are fsynced). Not where Ray is loaded: its clean-up runs at exit."""
    if "ray" in sys.modules:
        sys.exit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest: blocks under it come from the heap, where a freed one is reused
TRIM_THRESHOLD = 1 << 30  # free memory at the heap's top that stays with the process before it is given back


def keep_freed_memory() -> bool:
    """In a process that trains, let glibc's malloc keep what a step frees for the next step (call it where such
    a process starts). By default it hands large blocks straight back to the system and tunes its thresholds
    as it goes, so each step's activations and gradients were faulted in afresh: 350,000-1,000,000 page faults
    and about 1 s of system time in a fast-preset training, 13,000 and 0.05 s with fixed thresholds, which
    trained in 4.5 s instead of 5.0 (medians of 4, interleaved). The peak memory is the same; the process
    gives the rest back when it ends. Returns whether it applied: glibc only (not macOS, Windows or musl)."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
        return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return False


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


def cpu_sample() -> tuple[float, float, float] | None:
    """(wall seconds, machine busy CPU-seconds, this process's CPU-seconds), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (fields + [0] * 7)[:7]
    busy = (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")  # not steal: that is the host's
    return _clock(), busy, time.process_time()


_clock = time.monotonic
_noted: list[tuple[float, float, float]] = []  # the last two samples note_machine() took


def note_machine() -> None:
    """Note the machine's CPU use now, before a training starts in this process (the CLI before it imports
    torch, a job process each second while it waits for its job): the training's thread governor sets its
    first threads from what the machine had to spare then, before the first step (device.ThreadGovernor)."""
    sample = cpu_sample()
    if sample is not None:
        _noted[:] = [*_noted[-1:], sample]


def noted_window(least: float) -> tuple[tuple[float, float, float], tuple[float, float, float]] | None:
    """Two samples around a stretch of at least `least` seconds before a training: the last two notes while
    the newer is recent (a job process's second before its job arrived, so not the launch itself), else the
    one note and now (the CLI: its start to its training); None when there is no such note."""
    now = _clock()
    if len(_noted) == 2 and now - _noted[1][0] <= 2.0 and _noted[1][0] - _noted[0][0] >= least:
        return _noted[0], _noted[1]
    if _noted and least <= now - _noted[-1][0] <= 10.0 and (sample := cpu_sample()) is not None:
        return _noted[-1], sample
    return None
