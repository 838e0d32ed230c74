"""Personal handwriting kept in the run store's database: 28×28 digits with their true labels."""

from __future__ import annotations

import time

import numpy as np

from nnapp.engine.people import machine_user
from nnapp.store.owners import owner_of


class Drawings:
    """The drawings part of nnapp.store.Store (which provides _db)."""

    def add_drawing(self, pixels: np.ndarray, label: int, owner: str | None = None) -> int:
        """Save a 28×28 uint8 digit with its true label and who drew it (the machine's user by default); returns its id."""
        arr = np.asarray(pixels, dtype=np.uint8)
        if arr.shape != (28, 28) or not 0 <= int(label) <= 9:
            raise ValueError("a drawing is 28×28 pixels with a label from 0 to 9")
        with self._db() as db:
            cur = db.execute(
                "INSERT INTO drawings (label, pixels, created, owner) VALUES (?, ?, ?, ?)",
                (int(label), arr.tobytes(), time.time(), owner or machine_user()),
            )
            return int(cur.lastrowid)

    def drawings(self) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """All saved drawings: images (N×28×28 uint8), labels (N), ids. A damaged row is left out."""
        with self._db() as db:
            rows = db.execute("SELECT id, label, pixels FROM drawings ORDER BY id").fetchall()
        rows = [r for r in rows if isinstance(r["pixels"], bytes) and len(r["pixels"]) == 28 * 28 and r["label"] in range(10)]
        images = (
            np.stack([np.frombuffer(r["pixels"], dtype=np.uint8).reshape(28, 28) for r in rows])
            if rows
            else np.zeros((0, 28, 28), np.uint8)
        )
        return images, np.array([r["label"] for r in rows], dtype=np.int64), [r["id"] for r in rows]

    def drawing_owners(self) -> dict[int, str | None]:
        """Who drew each saved drawing, by id (None: drawn before names were kept)."""
        with self._db() as db:
            return {r["id"]: owner_of(r) for r in db.execute("SELECT id, owner FROM drawings")}

    def delete_drawing(self, drawing_id: int) -> None:
        with self._db() as db:
            db.execute("DELETE FROM drawings WHERE id=?", (drawing_id,))
