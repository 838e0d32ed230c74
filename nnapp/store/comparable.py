"""Train and validation losses on one definition.

The loss a run optimises includes its label smoothing; the validation loss does not. With smoothing
0.1 a network that is right and sure of it still scores about 0.5 on the first and 0.01 on the
second, so plotting them together shows a gap that is not there. The training loop therefore also
records each step's loss without the smoothing (nnapp.steplog), kept in tables of their own beside
`steps` and `epochs` (new columns there would break the positional inserts of an older nnapp opening
the same store). Readers take the train loss from here; runs stored before it was recorded show their
loss as optimised, labelled so.
"""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS step_losses (
    key TEXT NOT NULL, step INTEGER NOT NULL, loss_unsmoothed REAL, PRIMARY KEY (key, step)
);
CREATE TABLE IF NOT EXISTS epoch_losses (
    key TEXT NOT NULL, epoch INTEGER NOT NULL, train_loss_unsmoothed REAL, PRIMARY KEY (key, epoch)
);
"""
TABLES = ("step_losses", "epoch_losses")
SELECT_STEPS = "SELECT steps.*, step_losses.loss_unsmoothed FROM steps LEFT JOIN step_losses USING (key, step)"
SELECT_EPOCHS = "SELECT epochs.*, epoch_losses.train_loss_unsmoothed FROM epochs LEFT JOIN epoch_losses USING (key, epoch)"


class ComparableLosses:
    """The unsmoothed-loss part of Store: written in the transaction that writes the steps and epochs."""

    @staticmethod
    def _write_unsmoothed(db, key: str, steps: list[dict], epoch_row: dict | None) -> None:
        plain = [(key, s["step"], s["loss_unsmoothed"]) for s in steps if s.get("loss_unsmoothed") is not None]
        if plain:
            db.executemany("INSERT OR REPLACE INTO step_losses VALUES (?, ?, ?)", plain)
        if epoch_row and epoch_row.get("train_loss_unsmoothed") is not None:
            db.execute(
                "INSERT OR REPLACE INTO epoch_losses VALUES (?, ?, ?)",
                (key, epoch_row["epoch"], epoch_row["train_loss_unsmoothed"]),
            )


def train_loss(row: dict, label_smoothing: float, per_step: bool = True) -> tuple[float, bool]:
    """A step's (or, with per_step=False, an epoch's) train loss on validation's definition where it
    can be had, and whether it is: without smoothing the loss as optimised already is; a smoothed run
    stored before the unsmoothed loss was recorded gives its loss as optimised and False."""
    plain, optimised = ("loss_unsmoothed", "loss") if per_step else ("train_loss_unsmoothed", "train_loss")
    if row.get(plain) is not None:
        return row[plain], True
    return row[optimised], not label_smoothing


def epoch_line(e: dict, label_smoothing: float = 0.0) -> str:
    """One epoch for the CLI: the train loss on validation's definition where there is one."""
    loss, same = train_loss(e, label_smoothing, per_step=False)
    note = "" if same else f" (with label smoothing {label_smoothing:g})"
    return (
        f"epoch {number(e.get('epoch'), '3')}: train loss {number(loss)}{note} acc {number(e.get('train_acc'))}"
        f" | val loss {number(e.get('val_loss'))} acc {number(e.get('val_acc'))}"
    )


def number(value, spec: str = ".4f") -> str:
    """A metric as text; '-' for a missing one (a NaN loss is stored as nothing)."""
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def on_validation_definition(epochs: list[dict], label_smoothing: float) -> list[dict] | None:
    """Epoch rows whose train_loss is on validation's definition; None for a run that cannot give it."""
    out = []
    for e in epochs:
        loss, same = train_loss(e, label_smoothing, per_step=False)
        if not same:
            return None
        out.append({**e, "train_loss": loss})
    return out
