"""Data sets of your own classes: drawn through the canvas path or read from files, versioned by content,
split by class, trained like MNIST, continued, exported as bundles, on the command line and on the pages."""

import io
import json
import os
import subprocess
import sys
import urllib.error
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnapp.__main__ import main
from nnapp.bundle.export import bundle_bytes
from nnapp.bundle.importer import import_bundle
from nnapp.data.examples import model_input
from nnapp.data.make import add_drawing, add_files, export_zip
from nnapp.engine import datasets
from nnapp.engine.config import RunConfig
from nnapp.engine.data import Images, load, split
from nnapp.engine.presets import small_data
from nnapp.jobs.runs import train_or_load
from nnapp.predict.images import preprocess
from nnapp.predict.inference import for_inference, probabilities
from nnapp.store.lineage import joined
from nnapp.store.store import Store
from nnapp.system.errors import BundleError, DataError
from tests.owndata import COLOURS, NAMES, colour_picture, colour_zip, drawn_set, drawn_zip, png
from tests.shapes import drawings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = {"epochs": 12, "patience": 0}  # small-data, shortened: a second or two on 2 cores


def test_drawn_examples_train_a_network_that_reads_new_drawings(store):
    """Drawings saved as the Data page saves them train a network that reads new drawings of each class
    through the Playground's path (preprocess, then the network)."""
    data_set = drawn_set(store, per_class=16)
    assert data_set.counts == (16, 16, 16) and data_set.channels == 1
    run = train_or_load(small_data(data_set.ref).replace(**QUICK), store)
    assert run.status == "done" and run.accuracy >= 0.9, run
    assert len(run.test["confusion"]) == 3 and run.config.data_spec().classes == tuple(NAMES)
    model = for_inference(store.load_model(run.key)[0])
    images, labels = drawings(NAMES, 10, seed=99)  # drawn anew: never seen
    read = [int(np.argmax(probabilities(model, preprocess(image).digit))) for image in images]
    assert np.mean(np.array(read) == np.array(labels)) >= 0.9, read


def test_a_version_per_content_and_a_finished_run_keeps_its_own(store):
    data_set = drawn_set(store, per_class=10)
    first = data_set.ref
    run = train_or_load(RunConfig(dataset=first, model="mlp", hidden=(16,), batch_size=8, epochs=1), store)
    assert run.status == "done"
    added = add_drawing(store, "shapes", drawings(["circle"], 1, seed=5)[0][0], 0)
    assert added.ref != first and added.counts == (11, 10, 10)
    assert RunConfig(dataset=added.ref).key() != RunConfig(dataset=first).key()  # a new version, a new key
    kept = store.get(run.key)
    assert kept.config.dataset == first and kept.config.data_spec().counts == (10, 10, 10)
    assert len(load(first).train_x) == 30  # its images are still there
    ids, _, _ = store.examples("shapes", label=0, limit=1)
    assert store.delete_examples("shapes", ids).ref == first  # the same content is the same version
    add_drawing(store, "shapes", drawings(["arrow"], 1, seed=6)[0][0], 2)
    assert datasets.parts(first)[1] + ".npz" in os.listdir(store.datasets_folder)  # a run names it: kept
    store.delete(run.key)
    assert not any(f.startswith(datasets.parts(first)[1]) for f in os.listdir(store.datasets_folder))  # none does


def test_a_class_with_too_few_examples_cannot_train_and_says_why(store):
    store.create_dataset("few", ["yes", "no"])
    made = add_drawing(store, "few", drawings(["circle"], 1)[0][0], 0)
    problems = RunConfig(dataset=made.ref, batch_size=1).validate()
    assert set(problems) == {"dataset"} and "'yes' has 1 examples" in problems["dataset"] and "at least 10" in problems["dataset"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    counts=st.lists(st.integers(10, 60), min_size=2, max_size=6),
    seed=st.integers(0, 2**31),
    val=st.floats(0.05, 0.45),
    subset=st.integers(0, 100),
)
def test_the_split_is_stratified_by_class_and_fixed_by_the_seed(counts, seed, val, subset):
    y = torch.tensor([c for c, n in enumerate(counts) for _ in range(n)])
    x = torch.arange(len(y), dtype=torch.int64).to(torch.uint8).reshape(-1, 1, 1).expand(-1, 28, 28).contiguous()
    x[:, 0, 0] = torch.arange(len(y)) // 256
    x[:, 0, 1] = torch.arange(len(y)) % 256  # every image tells which it is
    images = Images(x, y, x[:0], y[:0], test_share=datasets.TEST_SHARE)
    subset = 0 if subset < 10 else min(subset, len(y) - datasets.test_count(len(y)))
    parts = split(images, val, seed, subset)
    ids = lambda t: set((t[:, 0, 0].long() * 256 + t[:, 0, 1].long()).tolist())  # noqa: E731
    test, valid, train = ids(parts.test_x), ids(parts.val_x), ids(parts.train_x)
    assert not (test & valid) and not (test & train) and not (valid & train)
    assert len(test) == datasets.test_count(len(y)) and (subset or len(test) + len(valid) + len(train) == len(y))
    for c, n in enumerate(counts):  # each class in its share, to within one image
        assert abs(int((parts.test_y == c).sum()) - n * len(test) / len(y)) <= 1
        left = n - int((parts.test_y == c).sum())  # of the class after the test share, validation takes its share
        assert abs(int((parts.val_y == c).sum()) - left * len(valid) / (len(y) - len(test))) <= 1
    again = split(images, val, seed, subset)
    assert torch.equal(again.train_x, parts.train_x) and torch.equal(again.test_y, parts.test_y)


def cli(*args, home):
    env = {**os.environ, "NNAPP_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "nnapp", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_cli_makes_trains_shows_exports_and_deletes_a_data_set(home, tmp_path):
    (tmp_path / "shapes.zip").write_bytes(drawn_zip(per_class=12))
    added = cli("data", "add", "shapes", "--from", str(tmp_path / "shapes.zip"), home=home)
    assert added.returncode == 0, added.stderr
    assert "added 36 images to shapes: arrow 12, circle 12, triangle 12" in added.stdout  # folders in name order
    listed = cli("data", "list", home=home)
    assert "shapes" in listed.stdout and "grey" in listed.stdout and "yes" in listed.stdout
    trained = cli("train", "--set", "dataset=shapes", "--set", "epochs=8", "--quiet", home=home)
    assert trained.returncode == 0, trained.stderr
    assert "shapes cnn 16-32" in trained.stdout and "test      accuracy" in trained.stdout
    shown = cli("data", "show", "shapes", home=home)
    assert "run       " in shown.stdout and "version   shapes@" in shown.stdout
    exported = cli("data", "export", "shapes", "--to", str(tmp_path / "out"), home=home)
    assert exported.returncode == 0 and (tmp_path / "out" / "shapes.zip").exists()
    with zipfile.ZipFile(tmp_path / "out" / "shapes.zip") as zf:
        assert len([n for n in zf.namelist() if n.endswith(".png")]) == 36
    refused = cli("data", "delete", "shapes", home=home)
    assert refused.returncode == 2 and "1 run(s) use shapes" in refused.stdout and "--yes" in refused.stderr
    deleted = cli("data", "delete", "shapes", "--yes", home=home)
    assert deleted.returncode == 0 and "kept with them" in deleted.stdout
    assert "done" in cli("list", home=home).stdout  # the run stays whole, its version with it
    again = cli("data", "add", "again", "--from", str(tmp_path / "out" / "shapes.zip"), home=home)
    assert again.returncode == 0 and "added 36 images" in again.stdout  # the export reads back


def test_an_export_reads_back_into_the_same_images(store):
    made = drawn_set(store, per_class=4)
    again, gathered = add_files(store, "copy", export_zip(store, "shapes"))
    assert again.counts == made.counts and not gathered.skipped
    assert sorted(x.tobytes() for x in store.examples("copy")[1]) == sorted(x.tobytes() for x in store.examples("shapes")[1])


def test_continuing_a_run_records_its_parent_and_joins_the_curves(home, capsys):
    store = Store(home)
    drawn_set(store, per_class=10)
    assert main(["train", "--set", "dataset=shapes", "--set", "epochs=3", "--set", "patience=0", "--quiet"]) == 0
    parent = store.runs()[0]
    assert main(["train", "--continue", parent.key[:8], "--set", "epochs=2", "--quiet"]) == 0
    child = next(r for r in store.runs() if r.key != parent.key)
    assert child.parent == parent.key and child.config.init_from == parent.key and child.config.epochs == 2
    assert child.config.lr == pytest.approx(parent.config.lr / 10) and child.config.schedule == "cosine"
    steps, epochs, joins = joined(store, child)
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4, 5] and joins == [(3.0, child.key)]
    assert steps[-1]["step"] == pytest.approx(5 * child.config.steps_per_epoch())
    capsys.readouterr()
    assert main(["train", "--continue", parent.key, "--set", "hidden=8"]) == 2
    assert "keeps the network" in capsys.readouterr().err
    assert main(["train", "--continue", parent.key, "--preset", "fast"]) == 2


def test_a_colour_data_set_from_files_trains_end_to_end(home, tmp_path, capsys):
    store = Store(home)
    made, gathered = add_files(store, "colours", colour_zip(per_class=15))
    assert made.channels == 3 and made.counts == (15, 15, 15) and gathered.channels == 3
    assert store.examples("colours")[1].shape[1:] == (3, 32, 32)
    run = train_or_load(small_data(made.ref).replace(**QUICK), store)
    assert run.status == "done" and run.accuracy >= 0.9, run
    model = for_inference(store.load_model(run.key)[0])
    rng = np.random.default_rng(42)
    read = lambda picture: made.classes[int(np.argmax(probabilities(model, model_input(picture, 3))))]  # noqa: E731
    right = [read(colour_picture(c, rng)) == c for c in COLOURS for _ in range(5)]
    assert sum(right) >= 13, right
    pictures = {f"{i}.png": png(colour_picture(c, rng)) for i, c in enumerate(COLOURS)}
    for name, data in pictures.items():
        (tmp_path / name).write_bytes(data)
    capsys.readouterr()
    assert main(["predict", run.key, *(str(tmp_path / n) for n in pictures)]) == 0  # the CLI reads pictures as the Playground
    said = capsys.readouterr().out
    assert [line.split(": ")[1].split("  [")[0] for line in said.splitlines()] == list(COLOURS) and "digit" not in said
    blob = bundle_bytes(store, run.key)  # its bundle round-trips, and its predict.py names the class of a picture
    imported = import_bundle(Store(tmp_path / "other"), blob)
    assert imported.config.data_spec().classes == tuple(sorted(COLOURS)) and imported.config.data_spec().channels == 3
    answers = predict_py(blob, tmp_path, {f"{i}.png": png(colour_picture(c, rng)) for i, c in enumerate(COLOURS)})
    assert [answers[f"{i}.png"].split(" (")[0] for i in range(3)] == list(COLOURS), answers


def predict_py(blob: bytes, folder, images: dict[str, bytes]) -> dict[str, str]:
    """Unpack a bundle into `folder`, write `images` beside it, run its predict.py without nnapp: file -> answer."""
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        zf.extractall(folder)
    for name, data in images.items():
        (folder / name).write_bytes(data)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run(
        [sys.executable, "-I", "predict.py", *images], cwd=folder, env=clean, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return dict(line.split(": ", 1) for line in proc.stdout.strip().splitlines())


def test_a_bundle_of_a_drawn_set_run_round_trips_with_its_classes(store, tmp_path):
    """Imported elsewhere, the run keeps its classes and image shape without its data set's images (its predict.py
    is run in the colour test above; a grey one reads as MNIST's does, test_bundle.py)."""
    made = drawn_set(store, per_class=10)
    run = train_or_load(RunConfig(dataset=made.ref, model="mlp", hidden=(16,), batch_size=8, epochs=2), store)
    blob = bundle_bytes(store, run.key)
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(blob)).read("manifest.json"))
    assert manifest["classes"] == NAMES and manifest["input"] == {"channels": 1, "size": 28, "form": "digit"}
    target = Store(tmp_path / "elsewhere")
    imported = import_bundle(target, blob)
    assert imported.config == run.config and imported.test == run.test
    assert target.get(run.key).config.data_spec().classes == tuple(NAMES)  # kept in the other store
    with pytest.raises(DataError, match="not in this run store"):  # continuing it there is said, not a traceback
        target.freeze(made.ref)
    tampered = json.loads(json.dumps(manifest))
    tampered["dataset"]["classes"] = ["x", "y", "z"]  # a data set of that version here says otherwise
    with pytest.raises(BundleError, match="data set"):
        import_bundle(Store(tmp_path / "third"), repack(blob, tampered))


def repack(blob: bytes, manifest: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as source, zipfile.ZipFile(buf, "w") as out:
        for name in source.namelist():
            out.writestr(name, json.dumps(manifest) if name == "manifest.json" else source.read(name))
    return buf.getvalue()


def test_cifar10_offline_is_one_clear_sentence(monkeypatch, tmp_path):
    import torchvision.datasets.cifar as tv_cifar

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("NNAPP_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    load.cache_clear()
    with pytest.raises(DataError) as err:
        load("cifar10")
    assert "CIFAR10" in str(err.value) and "offline" in str(err.value) and str(err.value).count(". ") == 0
    assert RunConfig(dataset="cifar10").data_spec().input_shape == (3, 32, 32)


def test_a_sweep_searches_on_a_data_set_of_yours(home, capsys):
    drawn_set(Store(home), per_class=10)
    args = ["sweep", "--set", "dataset=shapes", "--set", "epochs=3", "--set", "patience=0", "--param", "lr=1e-3:1e-2:log"]
    assert main([*args, "--trials", "2", "--parallel", "1", "--sampler", "random", "--name", "mine"]) == 0
    out = capsys.readouterr().out
    assert "2 of 2 trials ended (2 done)" in out
    assert {r.config.dataset for r in Store(home).runs()} == {Store(home).data_set("shapes").ref}
