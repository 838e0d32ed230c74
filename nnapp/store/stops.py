"""Stop flags another process can see: a file under the store's stop/ folder exists once stop is asked for."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nnapp.store.store import Store


class StopFile:
    """A stop flag that another process can see: the file exists once stop is asked for."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"StopFile({str(self.path)!r})"

    def set(self) -> None:
        self.path.touch()

    def is_set(self) -> bool:
        return self.path.exists()  # one stat() per training step: microseconds

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def stop_file(store: Store, key: str) -> StopFile:
    """The stop flag of a run or task: whoever trains it (a job, the CLI) polls it, anyone may set it."""
    return StopFile(store.home / "stop" / key.replace(":", "_"))
