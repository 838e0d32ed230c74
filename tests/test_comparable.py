"""Train and validation loss on one definition: recorded, stored, drawn and exported so (issue 12, item 5)."""

import csv
import io
import sqlite3

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nnapp.bundle import export
from nnapp.charts import runs as charts
from nnapp.engine.steplog import PendingStep, StepLog, unsmoothed_loss
from nnapp.engine.train import fit
from nnapp.jobs.runs import train_or_load
from nnapp.store.comparable import epoch_line, on_validation_definition, train_loss
from nnapp.store.store import Store


def test_each_step_also_records_its_loss_without_smoothing(tiny):
    config = tiny.replace(label_smoothing=0.2)
    log = StepLog(4, unsmoothed_loss(config))
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(4, 10, generator=gen) * 3, torch.randint(0, 10, (4,), generator=gen)) for _ in range(3)]
    for i, (logits, labels) in enumerate(batches, start=1):
        log.add(PendingStep(i, F.cross_entropy(logits, labels, label_smoothing=0.2), logits, labels, 0.1))
    rows, bad = log.flush(1)
    assert bad is None
    for row, (logits, labels) in zip(rows, batches, strict=True):
        assert row["loss"] == pytest.approx(F.cross_entropy(logits, labels, label_smoothing=0.2).item())
        assert row["loss_unsmoothed"] == pytest.approx(F.cross_entropy(logits, labels).item())  # what validation measures
    assert unsmoothed_loss(tiny) is None  # without smoothing the loss as optimised is that loss already


def test_epochs_and_store_keep_the_unsmoothed_train_loss(store, tiny):
    config = tiny.replace(label_smoothing=0.1, epochs=2)
    run = train_or_load(config, store)
    steps, epochs = store.steps(run.key), store.epochs(run.key)
    assert all(s["loss_unsmoothed"] is not None for s in steps)
    for e in epochs:
        mine = [s["loss_unsmoothed"] for s in steps if s["epoch"] == e["epoch"]]
        assert e["train_loss_unsmoothed"] == pytest.approx(sum(mine) / len(mine))
    # smoothing adds to the loss of a network that is right and sure: the plain loss is the lower one
    assert epochs[-1]["train_loss_unsmoothed"] < epochs[-1]["train_loss"]
    assert len(store.steps(run.key, max_rows=10)) <= 10 and "loss_unsmoothed" in store.steps(run.key, max_rows=10)[0]
    plain = train_or_load(tiny.replace(epochs=1), store)
    assert store.epochs(plain.key)[0]["train_loss_unsmoothed"] is None  # nothing to record without smoothing
    assert train_loss(store.epochs(plain.key)[0], 0.0, per_step=False) == (store.epochs(plain.key)[0]["train_loss"], True)


def test_the_fit_row_carries_the_epoch_mean(tiny):
    result = fit(tiny.replace(label_smoothing=0.1, epochs=1))
    row = result.epochs[0]
    assert row["train_loss_unsmoothed"] == pytest.approx(sum(s["loss_unsmoothed"] for s in result.steps) / len(result.steps))


OLD_SCHEMA = """
CREATE TABLE runs (key TEXT PRIMARY KEY, config TEXT NOT NULL, status TEXT NOT NULL, created REAL NOT NULL,
    started REAL, finished REAL, device TEXT, precision TEXT, pid INTEGER, message TEXT, progress TEXT, test TEXT,
    train_seconds REAL, weights_sha256 TEXT, parent TEXT, weights_file TEXT);
CREATE TABLE epochs (key TEXT NOT NULL, epoch INTEGER NOT NULL, train_loss REAL, train_acc REAL,
    val_loss REAL, val_acc REAL, lr REAL, seconds REAL, PRIMARY KEY (key, epoch));
CREATE TABLE steps (key TEXT NOT NULL, step INTEGER NOT NULL, epoch INTEGER, loss REAL, acc REAL, lr REAL,
    samples_per_s REAL, elapsed REAL, PRIMARY KEY (key, step));
"""


def test_an_older_store_opens_and_an_older_nnapp_can_still_write_it(home, tiny):
    key = tiny.replace(label_smoothing=0.1).key()
    home.mkdir(parents=True)
    with sqlite3.connect(home / "runs.sqlite") as db:
        db.executescript(OLD_SCHEMA)
        db.execute(
            "INSERT INTO runs (key, config, status, created) VALUES (?, ?, 'done', 0)",
            (key, tiny.replace(label_smoothing=0.1).to_json()),
        )
        db.execute("INSERT INTO steps VALUES (?, 1, 1, 0.9, 0.5, 0.001, 100.0, 1.0)", (key,))
        db.execute("INSERT INTO epochs VALUES (?, 1, 0.9, 0.5, 0.3, 0.9, 0.001, 1.0)", (key,))
    store = Store(home)  # adds the new tables; the old rows read with the new numbers missing
    assert store.steps(key)[0]["loss_unsmoothed"] is None and store.epochs(key)[0]["train_loss_unsmoothed"] is None
    assert store.histograms(key) == []
    with sqlite3.connect(home / "runs.sqlite") as db:  # the positional inserts of an older nnapp still fit
        db.execute("INSERT INTO steps VALUES (?, 2, 1, 0.8, 0.6, 0.001, 100.0, 2.0)", (key,))
        db.execute("INSERT INTO epochs VALUES (?, 2, 0.8, 0.6, 0.3, 0.9, 0.001, 1.0)", (key,))
    assert len(store.steps(key)) == 2
    # such a run's curves say what they show instead of comparing unlike losses
    series = charts.curve_series(store.steps(key), store.epochs(key), 10, label_smoothing=0.1)
    assert series["definitions"][0] == "the train loss with label smoothing 0.1, validation's without"
    assert on_validation_definition(store.epochs(key), 0.1) is None
    assert "(with label smoothing 0.1)" in epoch_line(store.epochs(key)[0], 0.1)
    rows = list(csv.DictReader(io.StringIO(export.metrics_csv(store, key).decode())))
    assert rows[0]["train_loss"] == "" and float(rows[0]["train_loss_optimised"]) == 0.9


def test_curves_plot_the_unsmoothed_train_loss_and_say_so():
    steps = [{"step": s, "loss": 0.6, "loss_unsmoothed": 0.1, "acc": 0.9} for s in range(1, 11)]
    epochs = [{"epoch": 1, "val_loss": 0.12, "val_acc": 0.97, "train_loss": 0.6, "train_loss_unsmoothed": 0.1}]
    fig = charts.curves(steps, epochs, 10, label_smoothing=0.1)
    assert list(fig.data[0].y) == [0.1] * 10  # the raw train loss: the unsmoothed one
    assert [a.text for a in fig.layout.annotations] == ["loss", "accuracy"]  # short titles; what they show beside them
    series = charts.curve_series(steps, epochs, 10, label_smoothing=0.1)
    assert series["definitions"][0] == "the train loss without label smoothing, as validation's"
    assert charts.curve_series(steps, epochs, 10)["definitions"][0] == ""
    assert on_validation_definition(epochs, 0.1)[0]["train_loss"] == 0.1


def test_metrics_csv_puts_like_next_to_like(store, tiny):
    run = train_or_load(tiny.replace(label_smoothing=0.1, epochs=2), store)
    rows = list(csv.DictReader(io.StringIO(export.metrics_csv(store, run.key).decode())))
    assert list(rows[0]) == [
        "epoch",
        "train_loss",
        "train_loss_optimised",
        "train_acc_training_mode",
        "val_loss",
        "val_acc",
        "lr",
        "seconds",
    ]
    epochs = store.epochs(run.key)
    assert [float(r["train_loss"]) for r in rows] == pytest.approx([e["train_loss_unsmoothed"] for e in epochs])
    assert [float(r["train_loss_optimised"]) for r in rows] == pytest.approx([e["train_loss"] for e in epochs])


def test_a_smoothed_loss_other_than_cross_entropy_gets_its_unsmoothed_value_step_by_step(tiny, monkeypatch):
    from nnapp.engine.registry import LOSSES, LossSpec

    monkeypatch.setitem(
        LOSSES._entries, "ce_too", LossSpec("nnapp.engine.losses.cross_entropy", "cross-entropy again", smoothing=True)
    )
    logits, labels = torch.randn(3, 8, 10), torch.randint(0, 10, (3, 8))
    generic = unsmoothed_loss(tiny.replace(loss="ce_too", label_smoothing=0.1))(logits, labels)
    batched = unsmoothed_loss(tiny.replace(label_smoothing=0.1))(logits, labels)
    assert np.allclose(generic.numpy(), batched) and batched.shape == (3,)
