"""Processes: whether one is alive, how nnapp's own end (the CLI, job processes), and the machine's CPU use as
the thread governor reads it; no torch import."""

from __future__ import annotations

import functools
import os
import sys
import time


def exit_now(code: int) -> None:
    """End this process without the interpreter's teardown, which with torch loaded collects every object for
    seconds of CPU; everything nnapp writes is on disk by then (each store write is its own
    transaction, weights are fsynced). Not where Ray is loaded: its clean-up runs at exit."""
    if "ray" in sys.modules:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # the reader stopped reading (`list | head`): nothing more to say
            pass
    os._exit(code)


def reader_gone() -> None:
    """What is left for stdout goes nowhere: its reader stopped reading (`python -m nnapp list | head -1`),
    which is no error, and Python's flush at exit must not say otherwise."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    finally:
        os.close(null)


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


def identity(pid: int | None = None) -> str | None:
    """Who process `pid` (this one by default) is, beyond its number: 'PID:START:BOOT', its start in clock
    ticks since boot and the boot's id, which a later process given the same pid does not share (a restart
    reuses pids). 'PID' alone where /proc does not say (not Linux); None when there is no such process."""
    pid = os.getpid() if pid is None else pid
    start, boot = _start_ticks(pid), _boot_id()
    if start is None or boot is None:
        return str(pid) if pid_alive(pid) else None
    return f"{pid}:{start}:{boot}"


def alive(process: str | None) -> bool:
    """Whether the process an identity() names still runs: the same pid, started at the same tick of the same
    boot. No identity (a row written by hand, or by an nnapp from before identities) proves nothing: not
    alive. A bare 'PID' (written where /proc does not say) is judged by its pid."""
    if not isinstance(process, str) or not process:
        return False
    pid, _, rest = process.partition(":")
    if not pid.isdigit() or not 0 < int(pid) < 2**31:
        return False
    if not rest:
        return pid_alive(int(pid))
    return identity(int(pid)) == process


def _start_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        fields = stat.rpartition(")")[2].split()  # after the name's closing parenthesis: state, ppid, ...
        return None if fields[0] in ("Z", "X") else int(fields[19])  # a zombie has ended; field 22 is the start
    except (OSError, ValueError, IndexError):
        return None


@functools.cache
def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip().replace(":", "") or None
    except OSError:
        return None


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
