"""The run store's SQLite file: one short connection per call, read-only when it cannot be written,
and every SQLite failure as a StoreError whose message is one sentence."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nnapp.system.errors import StoreError

READ_ONLY = "is read-only: runs can be listed, shown and exported, not written"
REASONS = {  # what SQLite says -> what the user reads
    "not a database": "is not an SQLite database: move it away to start a new store, or set NNAPP_HOME",
    "malformed": "is damaged (SQLite: database disk image is malformed)",
    "readonly": READ_ONLY,
    "locked": "is locked by another process (waited 30 s)",
    "disk is full": "cannot be written: the disk is full",
    "unable to open": "cannot be opened: check the permissions of its folder",
}


class Database:
    def __init__(self, path: Path):
        self.path = path
        self.uri: str | None = None  # set when opened read-only

    @property
    def readonly(self) -> bool:
        return self.uri is not None

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection whose block is one transaction: committed whole or rolled back whole."""
        try:
            db = sqlite3.connect(self.uri or self.path, timeout=30, uri=self.readonly)
        except sqlite3.Error as err:
            raise self.error(err) from None
        db.row_factory = sqlite3.Row
        db.text_factory = lambda raw: raw.decode("utf-8", "replace")  # damaged text reads, then fails its check
        try:
            with db:
                yield db
        except sqlite3.Error as err:
            raise self.error(err) from None
        finally:
            db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken at its start (BEGIN IMMEDIATE): read, then write, without a race
        against other processes."""
        try:
            db = sqlite3.connect(self.uri or self.path, timeout=30, uri=self.readonly, isolation_level=None)
        except sqlite3.Error as err:
            raise self.error(err) from None
        db.row_factory = sqlite3.Row
        db.text_factory = lambda raw: raw.decode("utf-8", "replace")
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as err:
            raise self.error(err) from None
        finally:
            db.close()

    def open_readonly(self) -> None:
        """Read without writing anything, not even SQLite's own -shm file; StoreError when even that fails."""
        failed = None
        for query in ("?mode=ro", "?immutable=1"):  # read-only WAL needs an existing -shm file; else immutable
            self.uri = self.path.resolve().as_uri() + query
            try:
                with self.connect() as db:
                    db.execute("SELECT key FROM runs LIMIT 1").fetchall()
                return
            except StoreError as err:
                failed = err
        self.uri = None
        raise failed

    def error(self, err: sqlite3.Error) -> StoreError:
        text = str(err)
        reason = next((r for k, r in REASONS.items() if k in text), f"failed: {text}")
        if "no such" in text:
            reason = f"does not have nnapp's tables ({text})"
        return StoreError(f"the run store {self.path} {reason}")


def can_fall_back(err: Exception) -> bool:
    """A failure to open for writing after which reading may still work."""
    if isinstance(err, StoreError):
        return any(REASONS[k] in str(err) for k in ("readonly", "unable to open"))
    return isinstance(err, OSError)
