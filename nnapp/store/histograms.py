"""Per-layer histograms of weights and gradient norms, one set per epoch, kept in the run store.

nnapp.recorder writes them during training (a train.Callback); this part stores and reads them and
puts several epochs on one value axis for a heatmap. No torch here: the store imports it.

Each row is one layer at one epoch's end (epoch 0: the weights training started from):
  kind "weight": the layer's weights (not its biases), `bins` equal bins over [lo, hi];
  kind "grad": the gradient norm of each of its units (a neuron's or a filter's weights), from the
               epoch's last training step; `norm` is the whole layer's gradient norm.
"""

from __future__ import annotations

import json

import numpy as np

from nnapp.store.weights import RunDeleted

SCHEMA = """
CREATE TABLE IF NOT EXISTS histograms (
    key TEXT NOT NULL, epoch INTEGER NOT NULL, layer TEXT NOT NULL, kind TEXT NOT NULL, position INTEGER NOT NULL,
    lo REAL NOT NULL, hi REAL NOT NULL, norm REAL, counts TEXT NOT NULL,
    PRIMARY KEY (key, epoch, layer, kind)
);
"""
KINDS = {"weight": "weights", "grad": "gradient norm per unit"}


class Histograms:
    """The histograms part of Store: `self._db()` comes from it."""

    def add_histograms(self, key: str, rows: list[dict]) -> None:
        """Store one epoch's rows: epoch, layer, kind, position (the layer's place in the network), lo, hi,
        norm and counts."""
        values = [
            (key, r["epoch"], r["layer"], r["kind"], r["position"], r["lo"], r["hi"], r["norm"], json.dumps(r["counts"]))
            for r in rows
        ]
        with self._db() as db:
            if not db.execute("SELECT 1 FROM runs WHERE key=?", (key,)).fetchone():
                raise RunDeleted(key)  # deleted while it trains: nothing more of it is written
            db.executemany("INSERT OR REPLACE INTO histograms VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

    def histograms(self, key: str) -> list[dict]:
        """Every stored row of a run, by layer position, kind and epoch; counts as lists."""
        with self._db() as db:
            rows = db.execute("SELECT * FROM histograms WHERE key=? ORDER BY position, kind, epoch", (key,)).fetchall()
        return [{**dict(r), "counts": json.loads(r["counts"])} for r in rows]


def layers(rows: list[dict]) -> list[str]:
    """The layers that have histograms, in the network's order."""
    return list(dict.fromkeys(r["layer"] for r in rows))


def on_grid(rows: list[dict], bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Several epochs' histograms (each over its own range) on one grid of `bins` equal bins spanning all
    of them: (edges, counts per epoch × bin). Counts are spread evenly within each source bin."""
    lo = min(r["lo"] for r in rows)
    hi = max(r["hi"] for r in rows)
    hi = hi if hi > lo else lo + 1e-12
    edges = np.linspace(lo, hi, bins + 1)
    grid = np.zeros((len(rows), bins))
    for i, r in enumerate(rows):
        counts = np.asarray(r["counts"], dtype=float)
        src = np.linspace(r["lo"], max(r["hi"], r["lo"] + 1e-12), len(counts) + 1)
        cumulative = np.concatenate([[0.0], np.cumsum(counts)])
        grid[i] = np.diff(np.interp(edges, src, cumulative))
    return edges, grid
