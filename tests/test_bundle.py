"""Export and import of run bundles: a faithful round trip, a predict.py that runs without nnapp, and tampered
bundles refused with what does not match, nothing stored and nothing unpickled."""

import csv
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from nnapp.__main__ import main
from nnapp.bundle.export import bundle_bytes
from nnapp.bundle.importer import import_bundle
from nnapp.engine.config import RunConfig
from nnapp.engine.data import load
from nnapp.engine.models import build_model
from nnapp.engine.presets import PRESETS
from nnapp.store.store import Store
from nnapp.system.errors import BundleError
from tests.conftest import plain
from tests.digits import render
from tests.nondigits import SHAPES, strokes_image
from ui import PAGES

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
MARKER = Path("/tmp") / f"nnapp-unpickled-{os.getpid()}"


@pytest.fixture(scope="module")
def exported(fast_run, fast_check):
    """(bundle bytes, the run it was made from, its store); the run has its not-a-digit check."""
    store, run = fast_run
    return bundle_bytes(store, run.key), run, store


def unpack(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def repack(blob: bytes, files: dict | None = None, manifest: dict | None = None, checksums: bool = True) -> bytes:
    """The bundle with files replaced (None removes one) and manifest fields changed; checksums redone unless told not."""
    parts = unpack(blob)
    for name, data in (files or {}).items():
        if data is None:
            parts.pop(name, None)
        else:
            parts[name] = data
    meta = json.loads(parts["manifest.json"])
    meta.update(manifest or {})
    if checksums:
        meta["files"] = {n: hashlib.sha256(d).hexdigest() for n, d in parts.items() if n != "manifest.json"}
    parts["manifest.json"] = json.dumps(meta).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return buf.getvalue()


class Payload:
    """Unpickling this runs a command: the test fails if the marker file appears."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def test_a_bundle_round_trips_into_another_store(exported, tmp_path):
    blob, run, source = exported
    target = Store(tmp_path / "other")
    imported = import_bundle(target, blob)
    assert imported.key == run.key and imported.config == run.config and imported.status == "done"
    assert imported.test == run.test and imported.weights_sha256 == run.weights_sha256
    assert imported.device == run.device and imported.train_seconds == run.train_seconds
    assert target.epochs(run.key) == source.epochs(run.key)
    for mine, theirs in zip(target.predictions(run.key), source.predictions(run.key), strict=True):
        assert np.array_equal(mine, theirs)
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(target.load_model(run.key)[0](x), source.load_model(run.key)[0](x))


def test_predict_py_runs_from_the_bundle_folder_without_nnapp(exported, tmp_path):
    blob, run, _ = exported
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        zf.extractall(tmp_path)
    for digit in range(10):
        Image.fromarray(render(digit, box=(40 + 5 * digit, 30, 120, 190))).save(tmp_path / f"{digit}.png")
    for name in ("W", "#"):
        Image.fromarray(strokes_image(SHAPES[name], (40, 30, 200, 220), 16)).save(tmp_path / f"{name}.png")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    no_nnapp = subprocess.run([sys.executable, "-I", "-c", "import nnapp"], cwd=tmp_path, env=clean, capture_output=True)
    assert no_nnapp.returncode != 0  # the script below cannot be leaning on nnapp
    images = [f"{d}.png" for d in range(10)] + ["W.png", "#.png"]
    proc = subprocess.run(
        [sys.executable, "-I", "predict.py", *images], cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    answers = dict(line.split(": ", 1) for line in proc.stdout.strip().splitlines())
    right = [d for d in range(10) if answers[f"{d}.png"].startswith(f"{d} (")]
    assert len(right) >= 8, answers
    assert all("not-a-digit score" in a for a in answers.values())  # the bundle's check is used
    assert answers["W.png"].startswith("not a digit (best guess") or answers["#.png"].startswith("not a digit (best guess")


def test_the_program_in_the_bundle_computes_what_the_network_does(exported):
    """Its logits are the network's; its features and not-a-digit.json give the app's not-a-digit score."""
    from nnapp.predict import ood
    from nnapp.predict.inference import for_inference

    blob, run, store = exported
    program = torch.export.load(io.BytesIO(unpack(blob)["model.pt2"])).module()
    model = store.load_model(run.key)[0]
    x = torch.rand(3, 1, 28, 28)
    logits, features = program(x)
    assert torch.allclose(logits, model(x), atol=1e-5)
    check = json.loads(unpack(blob)["not-a-digit.json"])
    for image in x[:, 0].numpy():
        verdict = ood.judge(for_inference(model), image, ood.load_stats(store, run.key))
        score = ood.score_numpy(program(torch.from_numpy(image).reshape(1, 1, 28, 28))[1].detach().numpy(), check)[0]
        assert score == pytest.approx(verdict.score, abs=1e-4) and check["threshold"] == verdict.threshold


NARROWER = PRESETS["fast"].replace(conv=((8, 3, 2), (32, 3, 2)))  # 8 channels in the first block instead of 16


def other_weights(config: RunConfig = NARROWER) -> bytes:
    """Weights of another network."""
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in build_model(config).state_dict().items()})


TAMPERED = [
    ("a byte of the weights", lambda b, p: repack(b, {"weights.safetensors": flip(p["weights.safetensors"])}, checksums=False),
     "weights.safetensors fails its checksum"),
    ("another network's weights", lambda b, p: repack(b, {"weights.safetensors": other_weights()}),
     "weights.safetensors does not match its config: 1.weight is F32 8×1×3×3, the network's is F32 16×1×3×3"),
    ("weights without batch norm", lambda b, p: repack(b, {"weights.safetensors": other_weights(PRESETS["fast"].replace(batch_norm=False))}),
     "missing: '3.weight', '3.bias', '3.running_mean' and 15 more; not in the network: '1.bias', '10.bias', '4.bias' and 3 more"),
    ("a changed config", lambda b, p: repack(b, {"config.json": edit_config(p, hidden=[64])}), "does not match its config (whose key is"),
    ("a changed config with its key", lambda b, p: repack(b, {"config.json": edit_config(p, hidden=[64])},
     {"key": RunConfig.from_dict({**json.loads(p["config.json"]), "hidden": [64]}).key()}),
     "weights.safetensors does not match its config"),
    ("an invalid config", lambda b, p: repack(b, {"config.json": edit_config(p, lr=float("nan"))}), "lr: must be a number"),
    ("an accuracy of 150%", lambda b, p: repack(b, manifest={"test": {**json.loads(p["manifest.json"])["test"], "accuracy": 1.5}}),
     "has no accuracy between 0 and 1"),
    ("another engine version", lambda b, p: repack(b, manifest={"engine": "0"}), "trained by nnapp engine '0'"),
    ("another data set's files", lambda b, p: repack(b, manifest={"data": "mnist-v2"}), "trained on data 'mnist-v2'"),
    ("an extra file", lambda b, p: repack(b, {"evil.pkl": pickle.dumps(Payload())}), "files nnapp does not write: 'evil.pkl'"),
    ("a pickle as the weights", lambda b, p: repack(b, {"weights.safetensors": pickle.dumps(Payload())}), "not a safetensors file"),
    ("no manifest", lambda b, p: repack_without_manifest(p), "lacks manifest.json"),
    ("text in the metrics", lambda b, p: repack(b, {"metrics.csv": b"epoch,train_loss\n1,lots\n"}), "metrics.csv row 1"),
    ("predictions of class 99", lambda b, p: repack(b, {"predictions.u8": bytes([99]) * 10_000}), "classes the data set does not have"),
    ("an unfinished run", lambda b, p: repack(b, manifest={"run": {"status": "failed"}}), "did not finish"),
    ("not a zip", lambda b, p: b"PK\x03\x04 certainly not a zip", "not an nnapp bundle"),
    ("nothing", lambda b, p: b"", "not an nnapp bundle"),
    # numbers that cannot be true
    ("a NaN in the weights", lambda b, p: repack(b, {"weights.safetensors": spoiled(p, float("nan"))}), "not finite (NaN or infinite)"),
    ("infinite weights", lambda b, p: repack(b, {"weights.safetensors": spoiled(p, float("inf"))}), "not finite (NaN or infinite)"),
    ("a negative training time", lambda b, p: repack(b, manifest=run_info(p, train_seconds=-5.0)), "a time that is not a number of seconds"),
    ("a negative creation time", lambda b, p: repack(b, manifest=run_info(p, created=-1.0)), "a time that is not a number of seconds"),
    ("an end before its start", lambda b, p: repack(b, manifest=run_info(p, finished=1.0, started=2.0)), "finished before it started"),
    ("a precision nnapp never trains in", lambda b, p: repack(b, manifest=run_info(p, precision="fp64")), "precision 'fp64' is not one"),
    ("a NaN test loss", lambda b, p: repack(b, manifest={"test": {**json.loads(p["manifest.json"])["test"], "loss": float("nan")}}),
     "test loss is not a finite number"),
    ("a NaN in the metrics", lambda b, p: repack(b, {"metrics.csv": csv_cell(p["metrics.csv"], "val_loss", "nan")}),
     "val_loss nan is not a finite number"),
    ("a negative loss in the metrics", lambda b, p: repack(b, {"metrics.csv": csv_cell(p["metrics.csv"], "val_loss", "-0.5")}),
     "val_loss -0.5 is outside 0 to inf"),
    ("an accuracy of 150% in the metrics", lambda b, p: repack(b, {"metrics.csv": csv_cell(p["metrics.csv"], "val_acc", "1.5")}),
     "val_acc 1.5 is outside 0 to 1"),
    ("a NaN in the curves", lambda b, p: repack(b, {"steps.csv": csv_cell(p["steps.csv"], "loss", "nan")}), "steps.csv row 1: loss"),
    ("a probability above 1", lambda b, p: repack(b, {"probabilities.f32": np.full(10_000, 1.5, np.float32).tobytes()}),
     "probabilities are not all between"),
    ("NaN probabilities", lambda b, p: repack(b, {"probabilities.f32": np.full(10_000, np.nan, np.float32).tobytes()}),
     "probabilities are not all between"),
    ("histograms of a layer the network lacks", lambda b, p: repack(b, {"histograms.json": histograms(p, layer="dense 9")}),
     "not a histogram of one of the network's layers"),
    ("histograms that do not add up", lambda b, p: repack(b, {"histograms.json": histograms(p, counts=[1, 2, 3])}), "counts 6 values"),
    ("a not-a-digit check of another network", lambda b, p: repack(b, {"not-a-digit.json": check_of(p, w1=[[0.0] * 128] * 5)}),
     "w1 is not a finite array that fits this network"),
    ("a NaN not-a-digit threshold", lambda b, p: repack(b, {"not-a-digit.json": check_of(p, threshold=float("nan"))}),
     "no finite threshold"),
]  # fmt: skip


def spoiled(parts: dict, value: float) -> bytes:
    """The bundle's weights with one number replaced by `value`."""
    from safetensors.torch import load, save

    tensors = load(parts["weights.safetensors"])
    name = next(n for n, t in tensors.items() if t.is_floating_point() and t.dim() > 1)
    tensors[name].view(-1)[0] = value
    return save(tensors)


def run_info(parts: dict, **changes) -> dict:
    return {"run": {**json.loads(parts["manifest.json"])["run"], **changes}}


def csv_cell(blob: bytes, column: str, value: str) -> bytes:
    rows = list(csv.DictReader(io.StringIO(blob.decode())))
    rows[0][column] = value
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def histograms(parts: dict, **changes) -> bytes:
    rows = json.loads(parts["histograms.json"])
    return json.dumps([{**rows[0], **changes}, *rows[1:]]).encode()


def check_of(parts: dict, **changes) -> bytes:
    return json.dumps({**json.loads(parts["not-a-digit.json"]), **changes}).encode()


def flip(data: bytes) -> bytes:
    return data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:]


def edit_config(parts: dict, **changes) -> bytes:
    return json.dumps({**json.loads(parts["config.json"]), **changes}).encode()


def repack_without_manifest(parts: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in parts.items():
            if name != "manifest.json":
                zf.writestr(name, data)
    return buf.getvalue()


def test_a_zip_bomb_is_refused_before_it_is_unpacked(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("manifest.json", "config.json", "weights.safetensors", "metrics.csv"):
            zf.writestr(name, b"\x00" * (8 << 20))  # 32 MiB of zeros pack into 32 KiB
    assert len(buf.getvalue()) < 100_000
    with pytest.raises(BundleError, match="unpacks to more than 16 MiB"):
        import_bundle(Store(tmp_path), buf.getvalue(), limit=16 << 20)


@pytest.mark.parametrize("what, make, says", TAMPERED, ids=[t[0] for t in TAMPERED])
def test_a_tampered_bundle_says_what_does_not_match_and_stores_nothing(exported, tmp_path, what, make, says):
    blob, _, _ = exported
    bad = make(blob, unpack(blob))
    target = Store(tmp_path / "other")
    with pytest.raises(BundleError) as err:
        import_bundle(target, bad)
    assert says in str(err.value), str(err.value)
    assert "\n" not in str(err.value)
    assert target.runs() == [] and not list((target.home / "weights").iterdir())
    assert not MARKER.exists()


def test_import_never_unpickles_the_program_it_carries(exported, tmp_path):
    blob, run, _ = exported
    bad = repack(blob, {"model.pt2": pickle.dumps(Payload())})  # checksums redone: the import itself must not load it
    assert import_bundle(Store(tmp_path / "other"), bad).key == run.key
    assert not MARKER.exists()


def test_import_and_export_on_the_command_line(exported, tmp_path, monkeypatch, capsys):
    blob, run, _ = exported
    monkeypatch.setenv("NNAPP_HOME", str(tmp_path / "home"))
    (tmp_path / "run.zip").write_bytes(blob)
    (tmp_path / "tampered.zip").write_bytes(repack(blob, manifest={"engine": "0"}))

    def cli(*args):
        code = main(list(args))
        out, err = capsys.readouterr()
        assert code == 0 or (err.startswith("nnapp: error:") and len(err.strip().splitlines()) == 1), err
        return code, out + err

    assert cli("import", str(tmp_path / "tampered.zip")) == (
        2,
        "nnapp: error: the run was trained by nnapp engine '0'; this nnapp is 1\n",
    )
    assert cli("import", str(tmp_path / "run.zip"))[0] == 0
    code, said = cli("import", str(tmp_path / "run.zip"))
    assert code == 2 and "already in the store" in said
    assert cli("import", str(tmp_path / "missing.zip"))[0] == 2
    assert cli("import", str(tmp_path))[0] == 2  # a folder
    code, said = cli("export", run.key, "--to", str(tmp_path / "run.zip"))
    assert code == 2 and "already exists" in said and (tmp_path / "run.zip").read_bytes() == blob
    code, said = cli("export", run.key, "--to", str(tmp_path / "run.zip" / "inside"))
    assert code == 2 and "is a file, not a folder" in said
    code, said = cli("export", run.key, "--to", "/proc/nnapp/bundle.zip")
    assert code == 2 and "cannot write /proc/nnapp/bundle.zip" in said
    assert [r.key for r in Store().runs()] == [run.key]


def test_a_bundle_uploaded_on_the_results_page(exported, home):
    blob, run, _ = exported
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(PAGES["results"].path).run()
    at.file_uploader(key="import_bundle").upload(
        "bad.zip", repack(blob, {"weights.safetensors": other_weights()}), "application/zip"
    )
    at.run()
    assert not at.exception and plain(at.error[0].value).startswith("Not imported: weights.safetensors does not match its config")
    assert Store().runs() == []
    at.file_uploader(key="import_bundle").set_value(("run.zip", blob, "application/zip")).run()
    assert not at.exception, at.exception
    assert plain(at.success[0].value).startswith(f"Imported run {run.key}")
    assert at.selectbox(key="results_pick").value == run.key and at.query_params["run"] == run.key
    at.run()  # a rerun neither imports it again nor says it is already there
    assert not at.error and plain(at.success[0].value).startswith(f"Imported run {run.key}")


def test_a_bundles_scores_are_worked_out_from_its_own_predictions(exported, tmp_path):
    """A manifest's test accuracy and confusion matrix are not believed: the predictions and the test labels decide."""
    blob, run, _ = exported
    test = json.loads(unpack(blob)["manifest.json"])["test"]
    boasting = repack(blob, manifest={"test": {**test, "accuracy": 0.9999}})
    target = Store(tmp_path / "boast")
    imported = import_bundle(target, boasting)
    assert imported.test == run.test  # the true scores, as trained
    (note,) = target.imported(run.key)["notes"]
    assert f"listed a test accuracy of 99.99%; its own predictions give {run.accuracy:.2%}" in note
    pred = np.frombuffer(unpack(blob)["predictions.u8"], np.uint8).copy()
    pred[:1000] = (pred[:1000] + 1) % 10  # a thousand answers changed, the manifest's scores left as they were
    worse = import_bundle(Store(tmp_path / "worse"), repack(blob, {"predictions.u8": pred.tobytes()}))
    labels = load("mnist").test_y.numpy()
    assert worse.accuracy == pytest.approx(float((pred == labels).mean()), abs=1e-6) and worse.accuracy < run.accuracy - 0.05
    assert np.trace(np.array(worse.test["confusion"])) == int((pred == labels).sum())
    assert worse.test["confusion"] != run.test["confusion"]


def test_a_bundle_carries_what_results_shows_and_import_restores_it(exported, tmp_path, monkeypatch):
    """Per-step curves, weight and gradient histograms and the not-a-digit check travel with the run."""
    from nnapp.predict import ood

    blob, run, source = exported
    assert {"steps.csv", "histograms.json", "not-a-digit.json"} <= set(unpack(blob))
    target = Store(tmp_path / "other")
    import_bundle(target, blob)
    assert target.steps(run.key) == source.steps(run.key) and len(target.steps(run.key)) > 100
    assert target.histograms(run.key) == source.histograms(run.key)
    mine, theirs = ood.load_stats(target, run.key), ood.load_stats(source, run.key)
    assert mine["threshold"] == theirs["threshold"] and np.array_equal(mine["w1"], theirs["w1"])
    assert target.imported(run.key)["missing"] == [] and target.imported(run.key)["version"] == 2
    monkeypatch.setenv("NNAPP_HOME", str(target.home))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(PAGES["results"].path).run()
    assert not at.exception, at.exception
    assert at.get("plotly_chart") and "Imported from a bundle (format 2)" in plain(at.caption[1].value)
    at.radio(key="inside_view").set_value("Weights and gradients").run()
    assert not at.exception and not at.info and at.selectbox(key="hist_layer").options


def test_an_older_bundle_imports_and_says_what_it_did_not_carry(exported, tmp_path, monkeypatch, capsys):
    blob, run, _ = exported
    old = repack(blob, {"steps.csv": None, "histograms.json": None, "not-a-digit.json": None}, {"version": 1})
    path = tmp_path / "old.zip"
    path.write_bytes(old)
    monkeypatch.setenv("NNAPP_HOME", str(tmp_path / "home"))
    assert main(["import", str(path)]) == 0
    said = capsys.readouterr().out
    assert "a bundle of format 1, without its per-step curves, histograms, not-a-digit check" in said
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(PAGES["results"].path).run()
    shown = " ".join(plain(c.value) for c in at.caption)
    assert "The bundle did not carry its per-step curves, histograms, not-a-digit check." in shown
    assert at.get("plotly_chart")  # its epochs are drawn
    at.radio(key="inside_view").set_value("Weights and gradients").run()
    (info,) = [plain(i.value) for i in at.info if "histograms" in i.value]
    assert "imported from a bundle (format 1) that did not carry them" in info and "trained before" not in info


def test_a_bundle_carries_the_runs_name_notes_and_tags(exported, tmp_path):
    blob, run, _ = exported
    assert json.loads(unpack(blob)["manifest.json"])["labels"] == {"name": "", "notes": "", "tags": []}
    labels = {"name": "my **first** run", "notes": "one epoch\nof the fast preset", "tags": ["demo", "cpu"]}
    store = Store(tmp_path / "named")
    import_bundle(store, repack(blob, manifest={"labels": labels}))
    got = store.labels(run.key)
    assert (got.name, got.notes, got.tags) == ("my **first** run", "one epoch\nof the fast preset", ("demo", "cpu"))
    older = Store(tmp_path / "older")  # a bundle from before names: the run goes by its default name
    import_bundle(older, repack(blob, manifest={"labels": None}))
    assert older.labels(run.key).name == ""
