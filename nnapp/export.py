"""What a stored run can be exported as: config JSON, safetensors weights, TorchScript, metrics CSV, not-a-digit check."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

import torch

from nnapp import ood
from nnapp.store import Store


def config_json(store: Store, key: str) -> bytes:
    run = store.get(key)
    return json.dumps(run.config.to_dict(), indent=2, sort_keys=True).encode()


def weights_bytes(store: Store, key: str) -> bytes:
    store.load_weights(key)  # checks the checksum
    return store.weights_path(key).read_bytes()


def torchscript_bytes(store: Store, key: str) -> bytes:
    """The model traced to TorchScript: loadable with torch.jit.load, no nnapp needed."""
    model, config = store.load_model(key)
    size = config.data_spec().image_size
    with warnings.catch_warnings():  # TorchScript is deprecated upstream, yet still the most portable file
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(model, torch.zeros(1, 1, size, size))
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
    return buf.getvalue()


def metrics_csv(store: Store, key: str) -> bytes:
    """Per-epoch metrics as CSV."""
    rows = store.epochs(key)
    buf = io.StringIO()
    columns = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def not_digit_json(store: Store, key: str) -> bytes | None:
    """The not-a-digit check (nnapp.ood.bundle_entry) as JSON; None for a run that has none (not MNIST)."""
    entry = ood.bundle_entry(store, key)
    return json.dumps(entry).encode() if entry else None


def export(store: Store, key: str, to: Path) -> list[Path]:
    """Write config.json, weights.safetensors, model.torchscript.pt, metrics.csv and not-a-digit.json into `to`."""
    to.mkdir(parents=True, exist_ok=True)
    files = {
        "config.json": config_json(store, key),
        "weights.safetensors": weights_bytes(store, key),
        "model.torchscript.pt": torchscript_bytes(store, key),
        "metrics.csv": metrics_csv(store, key),
        "not-a-digit.json": not_digit_json(store, key),
    }
    files = {name: blob for name, blob in files.items() if blob is not None}
    paths = []
    for name, blob in files.items():
        path = to / name
        path.write_bytes(blob)
        paths.append(path)
    return paths
