"""Files written whole or not at all, the leftovers of writers that were killed, and errors as sentences."""

from __future__ import annotations

import errno
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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
    where = path if path is not None else err.filename if err.filename is not None else ""
    return f"{where}: {reason}" if where else reason
