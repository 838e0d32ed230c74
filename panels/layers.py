"""The Train page's layer tables: their rows as a data editor shows them, and as its edits leave them."""

from __future__ import annotations

import math

import pandas as pd


def table_frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    """The rows with a position column first, numbered from 1: a user reorders them by it."""
    return pd.DataFrame([(i + 1, *r) for i, r in enumerate(rows)], columns=["position", *columns])


def number(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def edited_rows(rows: list[tuple], columns: list[str], edits: dict | None) -> tuple[list[tuple[int, ...]], int]:
    """`rows` with a data editor's edits applied as Streamlit applies them (cells edited by position in the
    rows given, then the deleted rows removed, then the added rows appended), in position order (rows
    without one last); the rows with an empty cell are skipped. Returns the rows and how many were skipped."""
    edits = edits or {}
    names = ["position", *columns]
    cells = [[i + 1, *r] for i, r in enumerate(rows)]
    for pos, change in (edits.get("edited_rows") or {}).items():
        for column, value in change.items():
            if column in names and 0 <= int(pos) < len(cells):
                cells[int(pos)][names.index(column)] = value
    deleted = {int(pos) for pos in edits.get("deleted_rows") or ()}
    cells = [row for pos, row in enumerate(cells) if pos not in deleted]
    cells += [[added.get(column) for column in names] for added in edits.get("added_rows") or ()]
    complete = [row for row in cells if all(number(v) for v in row[1:])]
    complete.sort(key=lambda row: row[0] if number(row[0]) else math.inf)  # stable: ties keep their order
    return [tuple(int(v) for v in row[1:]) for row in complete], len(cells) - len(complete)
