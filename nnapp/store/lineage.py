"""A run and the runs it continued: its ancestors by `parent`, and their curves joined into one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnapp.engine.records import Run

if TYPE_CHECKING:
    from nnapp.store.store import Store

MAX_ANCESTORS = 50


def ancestors(store: Store, run: Run) -> list[Run]:
    """The runs `run` continued, oldest first: each one's parent while it is stored, readable and was continued
    (not fine-tuned on personal drawings), never in a circle."""
    chain, seen, current = [], {run.key}, run
    while current.parent and current.config is not None and not current.config.personal and len(chain) < MAX_ANCESTORS:
        parent = store.get(current.parent)
        if parent is None or parent.key in seen or parent.config is None or parent.is_unreadable():
            break
        chain.append(parent)
        seen.add(parent.key)
        current = parent
    return chain[::-1]


def joined(store: Store, run: Run, max_rows: int | None = None) -> tuple[list[dict], list[dict], list[tuple[float, str]]]:
    """(steps, epochs, joins) of `run` after the runs it continued: each run's epochs counted on from where
    its parent's ended, its steps put on `run`'s steps-per-epoch scale; `joins` are (epoch, key) where each
    continuation starts."""
    steps_out, epochs_out, joins, offset = [], [], [], 0
    scale = run.config.steps_per_epoch()
    for member in [*ancestors(store, run), run]:
        own = member.config.steps_per_epoch()
        epochs = store.epochs(member.key)
        if offset:
            joins.append((float(offset), member.key))
        for s in store.steps(member.key, max_rows=max_rows):
            if s["step"] is not None:
                steps_out.append({**s, "step": (offset + s["step"] / max(own, 1)) * scale})
        epochs_out += [{**e, "epoch": e["epoch"] + offset} for e in epochs if e["epoch"] is not None]
        offset += max((e["epoch"] for e in epochs if e["epoch"] is not None), default=0)
    return steps_out, epochs_out, joins
