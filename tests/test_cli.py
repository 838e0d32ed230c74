import json
import os
import subprocess
import sys

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
    assert json.loads((out / "config.json").read_text())["hidden"] == [32]
    scripted = torch.jit.load(str(out / "model.torchscript.pt"))
    assert scripted(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert (out / "metrics.csv").read_text().count("\n") == 3
