"""What a stored run can be exported as: one zip bundle that `python -m nnapp import` (or an upload) reads back.

A bundle holds the portable form (config.json, weights.safetensors, metrics.csv), the network as a
torch.export program (model.pt2), a runnable predict.py that needs no nnapp, the test predictions, what the
Results page shows of the run (steps.csv: its per-step curves; histograms.json: its weights and gradients
per epoch), and manifest.json: the run's record, its class names and every file's SHA-256. An MNIST run's
program also returns the features its not-a-digit check reads, and not-a-digit.json holds that check
(nnapp.ood). Format version 2; version 1 (without steps.csv and histograms.json) still imports.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path

import torch

from nnapp.engine import datasets
from nnapp.engine.config import ENGINE_VERSION
from nnapp.predict import ood
from nnapp.store.comparable import train_loss
from nnapp.store.store import Store
from nnapp.system.errors import BundleError
from nnapp.system.files import atomic_write, os_error_text

FORMAT, VERSION = "nnapp-run", 2
READS = (1, 2)  # the format versions import reads
METRICS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]
STEPS = ["step", "epoch", "loss", "loss_unsmoothed", "acc", "lr", "samples_per_s", "elapsed"]
SCRIPT = Path(__file__).with_name("script.py")
README = """\
An nnapp run: {describe}
  predict.py IMAGE...   names the class of each image file: {classes} (needs torch, numpy and Pillow, not nnapp)
  model.pt2             the network as a torch.export program: torch.export.load("model.pt2").module()
                        (with not-a-digit.json beside it, it returns (logits, features): the check reads both)
  weights.safetensors   the weights; config.json describes the network they belong to
  metrics.csv           per-epoch metrics; steps.csv: per-step metrics; histograms.json: weights and
                        gradients per layer and epoch; manifest.json: the run's record and every file's SHA-256
Import the whole zip into another nnapp with: python -m nnapp import {name}
"""


def config_json(store: Store, key: str) -> bytes:
    run = store.get(key)
    return json.dumps(run.config.to_dict(), indent=2, sort_keys=True).encode()


def weights_bytes(store: Store, key: str) -> bytes:
    return store.weights_blob(key)  # a regular file of bounded size, its checksum checked


def program_bytes(store: Store, key: str, with_features: bool = False) -> bytes:
    """The network as a torch.export program (.pt2), batch size free: torch.export.load(...).module().
    `with_features`: it returns (logits, the features of the not-a-digit check) instead of logits."""
    model, config = store.load_model(key)
    model = ood.WithFeatures(model) if with_features else model
    batch = torch.export.Dim("batch", min=1, max=65536)
    program = torch.export.export(model, (torch.zeros(2, *config.data_spec().input_shape),), dynamic_shapes=({0: batch},))
    buf = io.BytesIO()
    torch.export.save(program, buf)
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


def steps_csv(store: Store, key: str) -> bytes:
    """Per-step metrics as CSV: `loss` as trained on, `loss_unsmoothed` on validation's definition (empty where
    it was not recorded), `acc` on the training batch in training mode."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=STEPS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(store.steps(key))
    return buf.getvalue().encode()


def histograms_json(store: Store, key: str) -> bytes:
    """The run's weight and gradient histograms, one object per layer, kind and epoch (nnapp.store.histograms)."""
    return json.dumps(store.histograms(key)).encode()


def input_form(spec) -> dict:
    """What predict.py makes of an image for this network: a grey digit as the canvas's (ink cropped, boxed
    and centred) or a small colour picture (the middle square, scaled)."""
    return {"channels": spec.channels, "size": spec.image_size, "form": "picture" if spec.channels == 3 else "digit"}


def own_description(spec) -> dict:
    """A data set of yours as its version's description (nnapp.engine.datasets): the importing nnapp knows
    the run's classes and image shape from it, without its images."""
    return datasets.description_of(spec)


def bundle_name(key: str) -> str:
    return f"nnapp-{key}.zip"


def bundle_bytes(store: Store, key: str) -> bytes:
    """The run as one zip bundle."""
    run = store.get(key)
    check = ood.bundle_entry(store, key)  # made now if the run has none yet (a few seconds)
    files = {
        "config.json": config_json(store, key),
        "weights.safetensors": weights_bytes(store, key),
        "metrics.csv": metrics_csv(store, key),
        "model.pt2": program_bytes(store, key, with_features=bool(check)),
        "predict.py": SCRIPT.read_bytes(),
        "README.txt": README.format(
            describe=run.config.describe(), classes=", ".join(run.config.data_spec().classes)[:200], name=bundle_name(key)
        ).encode(),
    }
    if check:
        files["not-a-digit.json"] = json.dumps(check).encode()
    if store.steps(key, max_rows=1):
        files["steps.csv"] = steps_csv(store, key)
    if store.histograms(key):
        files["histograms.json"] = histograms_json(store, key)
    predictions = store.predictions(key)
    if predictions is not None:
        files["predictions.u8"], files["probabilities.f32"] = (a.tobytes() for a in predictions)
    spec = run.config.data_spec()
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "key": key,
        "engine": ENGINE_VERSION,
        "data": spec.identity,
        "classes": list(spec.classes),
        "input": input_form(spec),
        **({"dataset": own_description(spec)} if spec.own else {}),
        "run": {name: getattr(run, name) for name in ("status", "created", "started", "finished", "device", "precision")}
        | {"train_seconds": run.train_seconds, "message": run.message, "parent": run.parent},
        "test": run.test,
        "labels": _labels(store, key),
        "files": {name: hashlib.sha256(blob).hexdigest() for name, blob in files.items()},
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, blob in {"manifest.json": json.dumps(manifest, indent=2).encode(), **files}.items():
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16  # unzipped as ordinary files
            zf.writestr(info, blob, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def _labels(store: Store, key: str) -> dict:
    """The run's name, notes and tags as a person gave them (empty ones included)."""
    labels = store.labels(key)
    return {"name": labels.name, "notes": labels.notes, "tags": list(labels.tags)}


def export(store: Store, key: str, to: Path) -> list[Path]:
    """Write the run's bundle: to `to` when it names a .zip file, else into the folder `to` (made if needed).

    An existing file is never overwritten, and the bundle appears whole or not at all.
    """
    path = to if to.suffix.lower() == ".zip" else to / bundle_name(key)
    if path.exists():
        raise BundleError(f"{path} already exists; choose another name or move it away")
    if to.exists() and not to.is_dir() and path != to:
        raise BundleError(f"{to} is a file, not a folder; give a folder or a name ending in .zip")
    above = next((p for p in path.parents if p.exists() or p.is_symlink()), None)  # said before the bundle is made
    if above is not None and not above.is_dir():
        raise BundleError(f"{above} is a file, not a folder: {path} cannot be written under it")
    blob = bundle_bytes(store, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, blob)
    except OSError as err:
        raise BundleError(f"cannot write {os_error_text(err, path)}") from None
    return [path]
