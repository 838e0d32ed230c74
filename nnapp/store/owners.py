"""Who made what: an `owner` column (a display name, nnapp.engine.people) on runs, tasks (sweeps among them),
drawings and data sets. A new store has it; one from before names were kept gets it when it is opened (its rows have none)."""

from __future__ import annotations

import sqlite3

OWNED = ("runs", "tasks", "drawings", "datasets")  # tables whose rows say who made them


def add_owner_columns(db) -> None:
    """The owner column on every table that keeps one, added where an older store lacks it (a table the store
    does not have yet is left for when it is made)."""
    for table in OWNED:
        columns = {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}
        if columns and "owner" not in columns:
            try:
                db.execute(f"ALTER TABLE {table} ADD COLUMN owner TEXT")
            except sqlite3.OperationalError as err:  # another process opening the same old store added it first
                if "duplicate column" not in str(err):
                    raise


def owner_of(row) -> str | None:
    """A row's owner as the store holds it (None: a row from before names, or a damaged one)."""
    from nnapp.engine.people import stored_name

    return stored_name(row["owner"]) if "owner" in row.keys() else None
