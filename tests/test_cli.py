import io
import json
import os
import subprocess
import sys
import zipfile

import torch

from nnapp.__main__ import main
from tests.conftest import TINY_SET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args, home):
    env = {**os.environ, "NNAPP_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "nnapp", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_bad_lr_exits_2_naming_lr(home):
    proc = cli("train", "--set", "lr=-1", home=home)
    assert proc.returncode == 2
    assert "lr" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_bad_arguments_are_one_line_errors(home, tmp_path, capsys):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{nope")
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"lr": 0.1, "layers": 4}))
    cases = [
        ["train", "--preset", "nope"],
        ["train", "--set", "epochs"],
        ["train", "--set", "activation=swish"],
        ["train", "--config", str(tmp_path / "missing.json")],
        ["train", "--config", str(bad_json)],
        ["train", "--config", str(unknown)],
        ["show", "deadbeef"],
        ["export", "deadbeef", "--to", str(tmp_path)],
        ["predict", "deadbeef", str(bad_json)],
        ["predict"],
        ["frobnicate"],
        [],
    ]
    for args in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("nnapp: error:") and len(err.strip().splitlines()) == 1, (args, err)
        assert "Traceback" not in err
    assert main(["train", "--config", str(unknown)]) == 2
    assert "layers" in capsys.readouterr().err


def test_train_cache_list_show_export(home, tmp_path):
    first = cli("train", *TINY_SET, home=home)
    assert first.returncode == 0, first.stderr
    assert "step" in first.stderr and "accuracy" in first.stdout  # progress bar, then the result
    second = cli("train", *TINY_SET, home=home)
    assert "loaded from cache" in second.stdout
    key = first.stdout.split()[1]
    listing = cli("list", home=home)
    assert key in listing.stdout and "done" in listing.stdout
    shown = cli("show", key[:6], home=home)
    assert shown.returncode == 0 and "epoch   2" in shown.stdout
    out = tmp_path / "export"
    exported = cli("export", key, "--to", str(out), home=home)
    assert exported.returncode == 0, exported.stderr
    bundle = out / f"nnapp-{key}.zip"
    assert exported.stdout.strip() == str(bundle)
    with zipfile.ZipFile(bundle) as zf:
        assert json.loads(zf.read("config.json"))["hidden"] == [32]
        assert zf.read("metrics.csv").decode().count("\n") == 3
        program = torch.export.load(io.BytesIO(zf.read("model.pt2"))).module()
        has_check = "not-a-digit.json" in zf.namelist()
    logits, features = program(torch.rand(2, 1, 28, 28))  # an MNIST run's program also returns its check's features
    assert has_check and logits.shape == (2, 10) and features.shape[0] == 2


def test_predict_reads_digits_and_says_what_is_not_one(fast_run, fast_check, tmp_path):
    from PIL import Image

    from tests.digits import render
    from tests.nondigits import SHAPES, strokes_image

    store, run = fast_run
    three, letter, blank = tmp_path / "three.png", tmp_path / "letter.png", tmp_path / "blank.jpg"
    Image.fromarray(render(3)).save(three)
    Image.fromarray(strokes_image(SHAPES["W"], (40, 30, 200, 220), 16)).save(letter)
    Image.new("RGB", (64, 64), "white").save(blank)
    proc = cli("predict", run.key[:8], str(three), str(letter), str(blank), home=store.home)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith(f"{three}: 3  [probability ") and "not-a-digit score" in lines[0] and "threshold" in lines[0]
    assert lines[1].startswith(f"{letter}: not a digit (best guess ") and "probability" in lines[1]
    assert lines[2] == f"{blank}: empty (no ink)"
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    for args in ([run.key, str(junk)], [run.key, str(tmp_path / "missing.png")]):
        bad = cli("predict", *args, home=store.home)
        assert bad.returncode == 2 and bad.stderr.startswith("nnapp: error:") and len(bad.stderr.strip().splitlines()) == 1
