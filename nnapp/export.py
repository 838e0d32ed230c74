"""What a stored run can be exported as: config JSON, safetensors weights, TorchScript, metrics CSV."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

import torch

from nnapp.comparable import train_loss
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
    """Per-epoch metrics as CSV. `train_loss` is on validation's definition (no label smoothing; empty for
    a smoothed run stored before nnapp recorded that), `train_loss_optimised` the loss as trained on;
    `train_acc_training_mode` is measured on the training batches in training mode."""
    smoothing = store.get(key).config.label_smoothing
    buf = io.StringIO()
    columns = ["epoch", "train_loss", "train_loss_optimised", "train_acc_training_mode", "val_loss", "val_acc", "lr", "seconds"]
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for e in store.epochs(key):
        loss, same = train_loss(e, smoothing, per_step=False)
        row = {**e, "train_loss": loss if same else None, "train_loss_optimised": e["train_loss"]}
        writer.writerow({**row, "train_acc_training_mode": e["train_acc"]})
    return buf.getvalue().encode()


def export(store: Store, key: str, to: Path) -> list[Path]:
    """Write config.json, weights.safetensors, model.torchscript.pt and metrics.csv into `to`."""
    to.mkdir(parents=True, exist_ok=True)
    files = {
        "config.json": config_json(store, key),
        "weights.safetensors": weights_bytes(store, key),
        "model.torchscript.pt": torchscript_bytes(store, key),
        "metrics.csv": metrics_csv(store, key),
    }
    paths = []
    for name, blob in files.items():
        path = to / name
        path.write_bytes(blob)
        paths.append(path)
    return paths
