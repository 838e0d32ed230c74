"""Import a run bundle written by nnapp.export: every part checked before anything is stored, nothing unpickled.

Checked: the zip itself (entries, sizes), the manifest, every file's SHA-256, the config (as a stored
config is), its key, the data set's identity and the engine version, the tensor names, shapes and dtypes
of the weights against the network the config builds (and that they are finite), the metrics, curves,
histograms and not-a-digit check against what they can be (nnapp.bundle.numbers), and the predictions.
The test scores are worked out again from the predictions. model.pt2 and predict.py are checked by
checksum only: the import never loads them. What the bundle carried and what import found is stored with
the run (Store.imported), for Results and `show` to say.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, field

import numpy as np

from nnapp.bundle import export, numbers
from nnapp.bundle.export import FORMAT, METRICS, READS
from nnapp.engine import datasets
from nnapp.engine.config import ENGINE_VERSION, PRECISIONS, RunConfig
from nnapp.engine.fields import KEY, loads, shown
from nnapp.engine.records import Run
from nnapp.engine.states import Status
from nnapp.store import labels
from nnapp.store.rows import Unreadable, read_config, read_test
from nnapp.store.store import Store
from nnapp.store.weights import safetensors_header
from nnapp.system.errors import BundleError
from nnapp.system.zips import ZipProblem, read_member

MAX_BUNDLE = 1 << 30  # bytes, packed or unpacked: 100M float parameters twice (safetensors and model.pt2), and change
REQUIRED = ("manifest.json", "config.json", "weights.safetensors", "metrics.csv")
OPTIONAL = ("model.pt2", "predict.py", "README.txt", "predictions.u8", "probabilities.f32", "not-a-digit.json", "steps.csv")
OPTIONAL += ("histograms.json",)
CARRIED = {"steps.csv": "per-step curves", "histograms.json": "histograms", "not-a-digit.json": "not-a-digit check"}
DTYPES = {"torch.float32": "F32", "torch.int64": "I64"}


@dataclass(frozen=True)
class Bundle:
    run: Run
    weights: bytes
    epochs: list[dict]
    predictions: tuple[bytes, bytes] | None
    steps: list[dict] = field(default_factory=list)
    histograms: list[dict] = field(default_factory=list)
    check: dict | None = None  # the not-a-digit check, as nnapp.predict.ood stores one
    origin: dict = field(default_factory=dict)  # what the bundle carried and what import found: Store.imported
    labels: dict | None = None  # the run's name, notes and tags; None from a bundle made before them


def import_bundle(store: Store, blob: bytes, limit: int = MAX_BUNDLE) -> Run:
    """Check a bundle and add its run to `store`; BundleError says what does not match, StoreError if it cannot be stored.

    `limit`: the most bytes the bundle may unpack to (an upload gets less than a file on the command line).
    """
    bundle = read_bundle(blob, limit)
    store.add_run(
        bundle.run,
        bundle.weights,
        bundle.epochs,
        bundle.predictions,
        steps=bundle.steps,
        histograms=bundle.histograms,
        origin=bundle.origin,
    )
    if bundle.check is not None:
        from nnapp.predict import ood

        ood.save_stats(store, bundle.run.key, bundle.check)
    if bundle.labels:
        store.set_labels(bundle.run.key, **bundle.labels)
    if bundle.run.config.data_spec().own:  # the run's classes and image shape, kept here (its images are not)
        store.write_description(export.own_description(bundle.run.config.data_spec()))
    return store.get(bundle.run.key)


def read_bundle(blob: bytes, limit: int = MAX_BUNDLE) -> Bundle:
    files = _unzip(blob, limit)
    manifest = _manifest(files)
    _checksums(files, manifest["files"])
    if "dataset" in manifest:  # a data set of yours: known from its description from now on
        try:
            datasets.remember(manifest["dataset"])
        except ValueError as err:
            raise BundleError(f"the bundle's data set cannot be read: {err}") from None
    try:
        config = read_config(files["config.json"].decode("utf-8", "replace"))
        test = read_test(manifest.get("test"), config)
    except Unreadable as err:
        raise BundleError(f"the bundle's run cannot be read: {err}") from None
    _identity(manifest, config)
    check_weights(config, files["weights.safetensors"])
    predictions = _predictions(files, config)
    test, notes = numbers.recompute_test(test, None if predictions is None else np.frombuffer(predictions[0], np.uint8), config)
    run = _run(manifest, config, test, hashlib.sha256(files["weights.safetensors"]).hexdigest())
    parts = _parts(files, config)
    carried = [what for name, what in CARRIED.items() if name in files]
    missing = [
        what for name, what in CARRIED.items() if name not in files and (name != "not-a-digit.json" or config.dataset == "mnist")
    ]
    origin = {"version": manifest["version"], "carried": carried, "missing": missing, "notes": notes}
    return Bundle(
        run,
        files["weights.safetensors"],
        read_metrics(files["metrics.csv"], config),
        predictions,
        **parts,
        origin=origin,
        labels=_labels(manifest.get("labels")),
    )


def _parts(files: dict[str, bytes], config: RunConfig) -> dict:
    """What the bundle carries of what Results shows besides the metrics: curves, histograms, the check."""
    from nnapp.predict.ood import VERSION as CHECK_VERSION

    return {
        "steps": numbers.read_steps(files["steps.csv"], config) if "steps.csv" in files else [],
        "histograms": numbers.read_histograms(files["histograms.json"], config) if "histograms.json" in files else [],
        "check": numbers.read_check(files["not-a-digit.json"], config, CHECK_VERSION) if "not-a-digit.json" in files else None,
    }


def _labels(data) -> dict | None:
    """A manifest's name, notes and tags as text (store.set_labels trims them); anything else is left out."""
    if not isinstance(data, dict):
        return None
    tags, name = data.get("tags"), data.get("name")
    return {
        "name": name if isinstance(name, str) and labels.name_problem(name) is None else "",  # else its default name
        "notes": data["notes"] if isinstance(data.get("notes"), str) else "",
        "tags": [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else [],
    }


def _unzip(blob: bytes, limit: int) -> dict[str, bytes]:
    if len(blob) > limit:
        raise BundleError(f"the bundle is larger than {limit >> 20} MiB")
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            infos = zf.infolist()
            names = [info.filename for info in infos]
            unknown = sorted(set(names) - set(REQUIRED) - set(OPTIONAL))
            if unknown or len(names) != len(set(names)):
                raise BundleError(f"the bundle holds files nnapp does not write: {', '.join(map(shown, unknown or names))}")
            missing = [name for name in REQUIRED if name not in names]
            if missing:
                raise BundleError(f"the bundle lacks {', '.join(missing)}")
            if sum(info.file_size for info in infos) > limit:
                raise BundleError(f"the bundle unpacks to more than {limit >> 20} MiB")
            return {info.filename: _read(zf, info) for info in infos}
    except BundleError:
        raise
    except Exception as err:  # zipfile raises BadZipFile, zlib.error, RuntimeError (encrypted), EOFError, ...
        raise BundleError(f"that is not an nnapp bundle (a zip file nnapp wrote): {str(err)[:80]}") from None


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        return read_member(zf, info)  # at most what the header declares, whatever the compressed stream holds
    except ZipProblem as err:
        raise BundleError(f"the bundle {err}") from None


def _manifest(files: dict[str, bytes]) -> dict:
    try:
        manifest = loads(files["manifest.json"].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise BundleError(f"manifest.json is not valid JSON ({str(err)[:60]})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError("manifest.json is not an nnapp run manifest")
    if manifest.get("version") not in READS:
        raise BundleError(
            f"the bundle's format version is {shown(manifest.get('version'))}; this nnapp reads {', '.join(map(str, READS))}"
        )
    listed = manifest.get("files")
    if not isinstance(listed, dict) or not all(isinstance(v, str) for v in listed.values()):
        raise BundleError("manifest.json lists no checksums")
    return manifest


def _checksums(files: dict[str, bytes], listed: dict[str, str]) -> None:
    unlisted = sorted(set(files) - {"manifest.json"} - set(listed))
    if unlisted:
        raise BundleError(f"{', '.join(unlisted)} in the bundle has no checksum in manifest.json")
    for name, sha in listed.items():
        if name not in files:
            raise BundleError(f"{shown(name)} is listed in manifest.json but not in the bundle")
        if hashlib.sha256(files[name]).hexdigest() != sha:
            raise BundleError(f"{name} fails its checksum: it changed after the bundle was made")


def _identity(manifest: dict, config: RunConfig) -> None:
    if manifest.get("engine") != ENGINE_VERSION:
        raise BundleError(f"the run was trained by nnapp engine {shown(manifest.get('engine'))}; this nnapp is {ENGINE_VERSION}")
    identity = config.data_spec().identity
    if manifest.get("data") != identity:
        raise BundleError(f"the run was trained on data {shown(manifest.get('data'))}, not this nnapp's {identity}")
    if manifest.get("key") != config.key():
        raise BundleError(
            f"the bundle's key {shown(manifest.get('key'))} does not match its config (whose key is {config.key()})"
        )


def check_weights(config: RunConfig, blob: bytes) -> None:
    """The tensors' names, shapes and dtypes against the network `config` builds (on the meta device: no memory)."""
    header = _safetensors_header(blob)
    import torch

    from nnapp.engine.models import build_model

    with torch.device("meta"):
        expected = {
            k: (DTYPES.get(str(v.dtype), str(v.dtype)), list(v.shape)) for k, v in build_model(config).state_dict().items()
        }
    found = {k: (v.get("dtype"), v.get("shape")) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}
    problems = [
        f"{name} is {_tensor(*found[name])}, the network's is {_tensor(*want)}"
        for name, want in expected.items()
        if name in found and found[name] != want
    ]
    problems += _names("missing", [name for name in expected if name not in found])
    problems += _names("not in the network", [name for name in found if name not in expected])
    if problems:
        raise BundleError(f"weights.safetensors does not match its config: {'; '.join(problems[:4])}")
    from safetensors.torch import load

    try:
        tensors = load(blob)
    except Exception as err:  # safetensors' own error type: offsets past the end, overlapping tensors, ...
        raise BundleError(f"weights.safetensors is damaged: {str(err)[:80]}") from None
    bad = [name for name, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise BundleError(f"weights.safetensors holds numbers that are not finite (NaN or infinite) in {', '.join(bad[:3])}")


def _safetensors_header(blob: bytes) -> dict:
    header = safetensors_header(blob)
    if header is None:
        raise BundleError("weights.safetensors is not a safetensors file")
    return header


def _names(what: str, names: list[str]) -> list[str]:
    if not names:
        return []
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return [f"{what}: {', '.join(shown(n) for n in names[:3])}{more}"]


def _tensor(dtype, shape) -> str:
    dims = "×".join(map(str, shape)) if isinstance(shape, list) else shown(shape)
    return f"{dtype if isinstance(dtype, str) else shown(dtype)} {dims}"[:60]


def _run(manifest: dict, config: RunConfig, test: dict, sha: str) -> Run:
    info = manifest.get("run")
    if not isinstance(info, dict) or info.get("status") != Status.DONE:
        raise BundleError("the bundle's run did not finish (only finished runs with weights are exported)")
    numbers.check_times(info)
    texts = [info.get(k) for k in ("device", "precision", "message")]
    if not all(t is None or (isinstance(t, str) and len(t) < 1000) for t in texts):
        raise BundleError("manifest.json has a device, precision or message that is not short text")
    if texts[1] is not None and texts[1] not in PRECISIONS:
        raise BundleError(f"manifest.json's precision {shown(texts[1])} is not one nnapp trains in ({', '.join(PRECISIONS)})")
    parent = info.get("parent") if isinstance(info.get("parent"), str) and KEY.fullmatch(info["parent"]) else None
    times = {k: info.get(k) for k in ("created", "started", "finished")}
    device, precision, message = texts
    return Run(
        config.key(),
        config,
        Status.DONE,
        **times,
        device=device,
        precision=precision,
        message=message,
        test=test,
        train_seconds=info.get("train_seconds"),
        weights_sha256=sha,
        parent=parent,
    )


def read_metrics(blob: bytes, config: RunConfig) -> list[dict]:
    """metrics.csv: one row per epoch, numbers in range or empty cells."""
    columns = [*METRICS, "train_loss_optimised", "train_acc_training_mode"]
    rows = numbers.csv_rows(blob, "metrics.csv", columns, numbers.EPOCH_RANGES | {"train_loss_optimised": numbers.LOSS})
    optimised = _has_column(blob, "train_loss_optimised")  # train_loss is then on validation's definition (nnapp.comparable)
    epochs = []
    for row in rows:
        if optimised:
            plain = (
                row["train_loss"] if row["train_loss"] != row["train_loss_optimised"] else None
            )  # recorded apart only if smoothed
            row = {**row, "train_loss": row["train_loss_optimised"], "train_loss_unsmoothed": plain}
            row["train_acc"] = row["train_acc_training_mode"] if row["train_acc_training_mode"] is not None else row["train_acc"]
        epochs.append({name: row.get(name) for name in (*METRICS, "train_loss_unsmoothed")})
    numbers.whole_rows(epochs, "epoch", "metrics.csv", 1, config.epochs)
    return epochs


def _has_column(blob: bytes, name: str) -> bool:
    return name in blob.split(b"\n", 1)[0].decode("utf-8", "replace").split(",")


def _predictions(files: dict[str, bytes], config: RunConfig) -> tuple[bytes, bytes] | None:
    pred, prob = files.get("predictions.u8"), files.get("probabilities.f32")
    if pred is None and prob is None:
        return None
    size = config.data_spec().test_size
    if pred is None or prob is None or len(pred) != size or len(prob) != 4 * size:
        raise BundleError(f"the bundle's predictions are not one per test image ({size:,})")
    numbers.check_predictions(pred, prob, len(config.data_spec().classes))
    return pred, prob
