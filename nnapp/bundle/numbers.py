"""A bundle's numbers: what import works out again from the bundle's own parts, and what it refuses as untrue.

Import believes no score it can recompute: the test accuracy, the confusion matrix and the per-class
precision, recall and F1 come from the bundle's predictions and the data set's test labels, whatever the
manifest lists (a difference is stored as recomputed and said). It refuses what cannot be true: a number that
is not finite, a negative time, loss or rate, an accuracy or a probability outside 0-1, weights that are not
finite, curves or histograms that do not fit the run's network.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import numpy as np

from nnapp.engine.arch import plan, weighted
from nnapp.engine.config import RunConfig
from nnapp.engine.fields import loads, shown
from nnapp.store.histograms import KINDS
from nnapp.system.errors import BundleError, DataError

MAX_ROWS = 5_000_000  # per-step rows in steps.csv: 1,000 epochs of 5,000 steps
MAX_BINS = 1_000
LOSS, SHARE, RATE, TIME = (0.0, math.inf), (0.0, 1.0), (0.0, math.inf), (0.0, math.inf)  # allowed [low, high]
EPOCH_RANGES = {"train_loss": LOSS, "train_acc": SHARE, "val_loss": LOSS, "val_acc": SHARE, "lr": RATE, "seconds": TIME}
EPOCH_RANGES["train_loss_unsmoothed"] = LOSS
STEP_RANGES = {"loss": LOSS, "loss_unsmoothed": LOSS, "acc": SHARE, "lr": RATE, "samples_per_s": RATE, "elapsed": TIME}


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def in_range(value: Any, bounds: tuple[float, float]) -> bool:
    return finite(value) and bounds[0] <= value <= bounds[1]


def check_times(info: dict) -> None:
    """The run's times: finite, none negative, and its end not before its start."""
    created, started, finished, seconds = (info.get(k) for k in ("created", "started", "finished", "train_seconds"))
    if not in_range(created, TIME) or not all(t is None or in_range(t, TIME) for t in (started, finished, seconds)):
        raise BundleError("manifest.json has a time that is not a number of seconds of at least 0")
    if started is not None and finished is not None and finished < started:
        raise BundleError("manifest.json says the run finished before it started")


def csv_rows(blob: bytes, name: str, columns: list[str], ranges: dict, limit: int = MAX_ROWS) -> list[dict]:
    """A CSV file's rows as numbers (an empty cell is None), each checked against `ranges`."""
    try:
        rows = csv.DictReader(io.StringIO(blob.decode("utf-8")))
        out = []
        for i, row in enumerate(rows, start=1):
            if i > limit:
                raise BundleError(f"{name} has more than {limit:,} rows")
            out.append(_numbers(row, i, name, columns, ranges))
    except (UnicodeDecodeError, csv.Error) as err:
        raise BundleError(f"{name} cannot be read: {str(err)[:60]}") from None
    return out


def _numbers(row: dict, i: int, name: str, columns: list[str], ranges: dict) -> dict:
    try:
        values = {c: float(row[c]) if row.get(c) else None for c in columns}
    except (ValueError, TypeError):
        raise BundleError(f"{name} row {i} holds something that is not a number") from None
    for column, bounds in ranges.items():
        value = values.get(column)
        if value is not None and not in_range(value, bounds):
            what = "not a finite number" if not finite(value) else f"outside {bounds[0]:g} to {bounds[1]:g}"
            raise BundleError(f"{name} row {i}: {column} {shown(value)} is {what}")
    return values


def whole_rows(rows: list[dict], column: str, name: str, low: int, high: int) -> None:
    """`column` of every row a whole number from `low` to `high`, none twice."""
    seen = set()
    for i, row in enumerate(rows, start=1):
        value = row.get(column)
        if value is None or not value.is_integer() or not low <= value <= high:
            raise BundleError(f"{name} row {i} has no {column} between {low:,} and {high:,}")
        row[column] = int(value)
        if row[column] in seen:
            raise BundleError(f"{name} has {column} {row[column]} twice")
        seen.add(row[column])


def read_steps(blob: bytes, config: RunConfig) -> list[dict]:
    """steps.csv: one row per training step, in range, the steps and their epochs whole numbers."""
    from nnapp.bundle.export import STEPS

    rows = csv_rows(blob, "steps.csv", STEPS, STEP_RANGES)
    whole_rows(rows, "step", "steps.csv", 1, MAX_ROWS)
    for i, row in enumerate(rows, start=1):
        epoch = row.get("epoch")
        if epoch is None or not epoch.is_integer() or not 1 <= epoch <= config.epochs:
            raise BundleError(f"steps.csv row {i} has no epoch between 1 and {config.epochs}")
        row["epoch"] = int(epoch)
        if row["loss"] is None or row["acc"] is None:
            raise BundleError(f"steps.csv row {i} has no loss or accuracy")
    return rows


def read_histograms(blob: bytes, config: RunConfig) -> list[dict]:
    """histograms.json: rows of the network's own weighted layers, epochs 0 to the run's, counts that add up
    to the layer's weights (or its units, for gradients)."""
    try:
        rows = loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise BundleError(f"histograms.json is not valid JSON ({str(err)[:60]})") from None
    layers = {name: position for position, name in weighted(config)}
    sizes = _layer_sizes(config)
    if not isinstance(rows, list) or len(rows) > (config.epochs + 1) * 2 * len(layers):
        raise BundleError("histograms.json is not a list of the network's histograms")
    keys = set()
    for i, row in enumerate(rows, start=1):
        _histogram(row, i, config, layers, sizes)
        keys.add((row["epoch"], row["layer"], row["kind"]))
    if len(keys) != len(rows):
        raise BundleError("histograms.json has a histogram twice")
    return rows


def _histogram(row: Any, i: int, config: RunConfig, layers: dict, sizes: dict) -> None:
    where = f"histograms.json item {i}"
    if not isinstance(row, dict) or row.get("layer") not in layers or row.get("position") != layers[row["layer"]]:
        raise BundleError(f"{where} is not a histogram of one of the network's layers")
    if row.get("kind") not in KINDS or not (isinstance(row.get("epoch"), int) and 0 <= row["epoch"] <= config.epochs):
        raise BundleError(f"{where} has no kind ({', '.join(KINDS)}) or no epoch between 0 and {config.epochs}")
    lo, hi, norm, counts = row.get("lo"), row.get("hi"), row.get("norm"), row.get("counts")
    if not (finite(lo) and finite(hi) and lo <= hi) or not (norm is None or in_range(norm, RATE)):
        raise BundleError(f"{where} has a range or a norm that is not finite")
    if not isinstance(counts, list) or not 0 < len(counts) <= MAX_BINS:
        raise BundleError(f"{where} has no counts")
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        raise BundleError(f"{where} has counts that are not whole numbers of at least 0")
    weights, units = sizes[row["position"]]
    if sum(counts) != (weights if row["kind"] == "weight" else units):
        raise BundleError(
            f"{where} counts {sum(counts):,} values; layer {row['layer']} has {weights:,} weights and {units:,} units"
        )


def _layer_sizes(config: RunConfig) -> dict[int, tuple[int, int]]:
    """Position -> (weights, units) of each weighted layer, from the network's plan."""
    out = {}
    for position, layer in enumerate(plan(config, len(config.data_spec().classes))):
        if layer.kind == "conv":
            channels, units, kernel = layer.args[:3]
            out[position] = (channels * units * kernel * kernel, units)
        elif layer.kind == "linear":
            inputs, units = layer.args[:2]
            out[position] = (inputs * units, units)
    return out


def feature_width(config: RunConfig) -> int:
    """How many features the not-a-digit check reads: each activation's output (a conv map as its 2×2 means)
    and the logits (nnapp.predict.ood.run_with_features)."""
    layers = plan(config, len(config.data_spec().classes))
    width = sum(layer.shape[0] * 4 if len(layer.shape) == 3 else layer.shape[0] for layer in layers if layer.kind == "activation")
    return width + len(config.data_spec().classes)


def read_check(blob: bytes, config: RunConfig, version: int) -> dict | None:
    """not-a-digit.json as the store keeps a check (nnapp.predict.ood); None for a check of another version."""
    try:
        check = loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise BundleError(f"not-a-digit.json is not valid JSON ({str(err)[:60]})") from None
    if not isinstance(check, dict) or check.get("version") != version:
        return None  # made by another version of the check: made again here
    width, arrays = feature_width(config), {}
    for name, shape in (("w1", (width, None)), ("b1", (None,)), ("w2", (None,)), ("b2", (1,))):
        try:
            arrays[name] = np.asarray(check.get(name), dtype=np.float32)
        except (TypeError, ValueError):
            raise BundleError(f"not-a-digit.json: {name} is not an array of numbers") from None
        wrong = arrays[name].ndim != len(shape) or any(
            want not in (None, got) for want, got in zip(shape, arrays[name].shape, strict=False)
        )
        if wrong or not np.isfinite(arrays[name]).all():
            raise BundleError(f"not-a-digit.json: {name} is not a finite array that fits this network ({width} features)")
    hidden = arrays["w1"].shape[1]
    if arrays["b1"].shape != (hidden,) or arrays["w2"].shape != (hidden,):
        raise BundleError("not-a-digit.json: its layers do not fit together")
    rates = check.get("rates")
    shares = ("validation", "test", "heldout")
    if not (finite(check.get("threshold")) and isinstance(rates, dict) and all(in_range(rates.get(k), SHARE) for k in shares)):
        raise BundleError("not-a-digit.json has no finite threshold or no rates between 0 and 1")
    if not (isinstance(rates.get("heldout_count"), int) and rates["heldout_count"] >= 0):
        raise BundleError("not-a-digit.json has no count of held-out images")
    return {**arrays, "threshold": float(check["threshold"]), "rates": rates, "seconds": 0.0}


def check_predictions(pred: bytes, prob: bytes, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Each test image's predicted class and its probability: classes the data set has, probabilities a
    softmax's largest can be (finite, from 1/classes to 1)."""
    p, q = np.frombuffer(pred, dtype=np.uint8), np.frombuffer(prob, dtype=np.float32)
    if p.size and int(p.max()) >= classes:
        raise BundleError("the bundle's predictions name classes the data set does not have")
    if not np.isfinite(q).all() or (q.size and (q.min() < 1 / classes - 1e-6 or q.max() > 1 + 1e-6)):
        raise BundleError(f"the bundle's probabilities are not all between {1 / classes:g} and 1 (a softmax's largest)")
    return p, q


def recompute_test(test: dict, pred: np.ndarray | None, config: RunConfig) -> tuple[dict, list[str]]:
    """The test results import stores: worked out from the predictions and the data set's test labels where
    it can, from the confusion matrix alone where it cannot; and what it says about the manifest's own."""
    from nnapp.engine.metrics import report

    if not finite(test.get("loss")) or test["loss"] < 0:
        raise BundleError("the bundle's test loss is not a finite number of at least 0")
    classes = len(config.data_spec().classes)
    y, p, notes = _pairs(test, pred, config, classes)
    accuracy = (p == y).float().mean().item() if len(y) else 0.0  # as training computes it, to the bit
    recomputed = {**test, "accuracy": accuracy, **report(y, p, classes)}
    if not math.isclose(test["accuracy"], accuracy, rel_tol=0, abs_tol=1e-6):
        notes.append(
            f"its manifest listed a test accuracy of {test['accuracy']:.2%}; its own predictions give {accuracy:.2%}, "
            "which is what was stored"
        )
    else:
        recomputed["accuracy"] = test["accuracy"]  # the same to float32's rounding: kept as it was trained
        if any(recomputed[k] != test.get(k) for k in ("confusion", "precision", "recall", "f1")):
            notes.append(
                "its manifest's confusion matrix or per-class scores did not match its predictions; they were worked out again"
            )
    return recomputed, notes


def _pairs(test: dict, pred: np.ndarray | None, config: RunConfig, classes: int):
    """(true, predicted) class of each test image: the data set's labels and the bundle's predictions, or,
    without either, the pairs the bundle's confusion matrix counts (checked against its predictions)."""
    import torch

    from nnapp.engine.data import test_set

    if pred is not None:
        try:  # the images the run was scored on: a data set's own test set, or the share its split holds out
            labels = test_set(config.dataset, config.val_fraction, config.seed, config.train_subset)[1]
        except DataError:
            labels = None
            note = f"its test results could not be checked against {config.dataset}'s test labels, which are not on this machine"
        if labels is not None and len(labels) != len(pred):
            raise BundleError(f"the bundle has {len(pred):,} predictions for {len(labels):,} test images")
        if labels is not None:
            return labels.long(), torch.from_numpy(pred.astype(np.int64)), []
    else:
        note = "it carried no predictions: its scores were worked out from its confusion matrix"
    confusion = torch.tensor(test["confusion"], dtype=torch.long)
    if pred is not None and np.bincount(pred, minlength=classes).tolist() != confusion.sum(0).tolist():
        raise BundleError("the bundle's confusion matrix does not match its own predictions")
    y = torch.arange(classes).repeat_interleave(confusion.sum(1))
    p = torch.cat([torch.arange(classes).repeat_interleave(row) for row in confusion])
    return y, p, [note]
