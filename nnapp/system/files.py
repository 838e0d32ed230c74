"""Files written whole or not at all, the leftovers of writers that were killed, and errors as sentences."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None

TEMP = re.compile(r"\.(\d+)\.[^./]*\.tmp$")  # NAME.PID.RANDOM.tmp: the writer's pid is in the name
STALE_SECONDS = 3600  # a temporary file without a pid in its name, untouched this long, is a leftover


def atomic_write(path: Path, blob: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target.

    A reader sees the old file or the new one, never half of one; a writer killed midway leaves a
    NAME.PID.*.tmp file that clean_temp_files removes once that process is gone.
    """
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.{os.getpid()}.", suffix=".tmp")
    except OSError as err:  # name the file being written, not the temporary one
        raise OSError(err.errno, err.strerror, str(path)) from None
    try:
        os.fchmod(fd, 0o644)  # as an ordinary new file, not mkstemp's owner-only mode
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:  # a full disk, a folder gone read-only: named by the file being written
        Path(tmp).unlink(missing_ok=True)
        raise OSError(err.errno, err.strerror, str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def clean_temp_files(folder: Path, alive: Callable[[int], bool]) -> list[Path]:
    """Remove the temporary files of writers that no longer run; returns what was removed."""
    removed = []
    for path in folder.glob("*.tmp"):
        match = TEMP.search(path.name)
        try:
            stale = not alive(int(match[1])) if match else time.time() - path.stat().st_mtime > STALE_SECONDS
            if stale:
                path.unlink()
                removed.append(path)
        except OSError:  # gone already, or not ours to remove: either way nothing to do
            continue
    return removed


def os_error_text(err: OSError, path: Path | str | None = None) -> str:
    """'/x/y: permission denied' from an OSError, without Python's [Errno n] prefix; `path` names the file instead."""
    reason = {
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.ENOSPC: "the disk is full",
        errno.ENOENT: "no such file or folder",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.EISDIR: "it is a folder",
        errno.EEXIST: "it already exists",
    }.get(err.errno, (err.strerror or str(err)).lower())
    if isinstance(err, UnreadableFile):  # nnapp's own sentence, as written
        reason = err.strerror
    where = path if path is not None else err.filename if err.filename is not None else ""
    return f"{where}: {reason}" if where else reason


class UnreadableFile(OSError):
    """A file nnapp will not read: not a regular file (a folder, a FIFO, a device, a socket), or larger than
    the most it may be. str() is the sentence: 'PATH: it is a FIFO, not a regular file'."""

    def __init__(self, path: Path | str, reason: str):
        super().__init__(None, reason, str(path))

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}
CHUNK = 64 << 10  # what a read asks for once the size fstat gave is read (a file that grows)


def size_text(size: int) -> str:
    """1048576 -> '1 MiB'; a limit as a sentence says it."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            return f"{size / (1 << shift):g} {unit}"
    return f"{size} bytes"


def _checked(path: Path | str, info: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        kind = KINDS.get(stat.S_IFMT(info.st_mode), "a socket" if stat.S_ISSOCK(info.st_mode) else "not a file")
        raise UnreadableFile(path, f"it is {kind}, not a regular file")
    if info.st_size > limit:
        raise UnreadableFile(path, f"it is larger than {size_text(limit)}, more than nnapp reads there")


def check_regular(path: Path | str, limit: int) -> os.stat_result:
    """Stat `path` (following links) and raise UnreadableFile unless it is a regular file of at most `limit`
    bytes: for a reader that opens the file itself (numpy, gzip, Optuna), before it does."""
    info = os.stat(path)
    _checked(path, info, limit)
    return info


def read_regular(path: Path | str, limit: int) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them. A folder, a FIFO, a device or a socket
    is refused (UnreadableFile) before anything is read: a FIFO is opened without waiting for a writer,
    /dev/zero never read. Only what the file holds is allocated, never `limit` up front."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        _checked(path, info, limit)
        os.set_blocking(fd, True)
        chunks, total, want = [], 0, info.st_size + 1  # +1: a file that grew since fstat is found
        while total <= limit:
            chunk = os.read(fd, min(want, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total, want = total + len(chunk), CHUNK
    finally:
        os.close(fd)
    if total > limit:
        raise UnreadableFile(path, f"it is larger than {size_text(limit)}, more than nnapp reads there")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


@contextlib.contextmanager
def shared_lock(path: Path) -> Iterator[None]:
    """Hold a shared lock on the file `path` (made if needed) for the block; the kernel lets it go when the
    process dies, kill -9 included. Where locks do not exist (not POSIX) the block runs unlocked."""
    if fcntl is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive_lock_now(path: Path) -> Iterator[bool]:
    """Try for an exclusive lock on `path` without waiting: the block gets True while it holds it, False
    when someone holds a shared one (or locks do not exist here)."""
    if fcntl is None:
        yield False
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
