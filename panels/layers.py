"""The Train page's layer tables: their rows as a data editor shows them, and as its edits leave them."""

from __future__ import annotations

import math

import pandas as pd


def table_frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    """The rows with a position column first, numbered from 1: a user reorders them by it."""
    return pd.DataFrame([(i + 1, *r) for i, r in enumerate(rows)], columns=["position", *columns])


def as_int(value) -> int | None:
    """A cell's whole number, or None for an empty cell or one that holds no number (a hostile client's)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) else None


def edited_rows(rows: list[tuple], columns: list[str], edits: dict | None) -> tuple[list[tuple[int, ...]], int]:
    """`rows` with a data editor's edits applied as Streamlit applies them (cells edited by position in the
    rows given, then the deleted rows removed, then the added rows appended), in position order (rows
    without one last); the rows with an empty cell are skipped. Returns the rows and how many were skipped."""
    edits = edits or {}
    names = ["position", *columns]
    cells = [[i + 1, *r] for i, r in enumerate(rows)]
    for pos, change in (edits.get("edited_rows") or {}).items():
        for column, value in change.items() if isinstance(change, dict) else ():
            if column in names and as_int(pos) is not None and 0 <= as_int(pos) < len(cells):
                cells[as_int(pos)][names.index(column)] = value
    deleted = {as_int(pos) for pos in edits.get("deleted_rows") or ()}
    cells = [row for pos, row in enumerate(cells) if pos not in deleted]
    cells += [[added.get(column) for column in names] for added in edits.get("added_rows") or () if isinstance(added, dict)]
    cells = [[as_int(v) for v in row] for row in cells]
    complete = [row for row in cells if None not in row[1:]]
    complete.sort(key=lambda row: math.inf if row[0] is None else row[0])  # stable: ties keep their order
    return [tuple(row[1:]) for row in complete], len(cells) - len(complete)
