"""The learning-rate finder: a real range test on a small MNIST subset, its suggestion, its cache, its CLI."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from nnapp.engine.data import load, split
from nnapp.engine.device import pick_device
from nnapp.engine.train import fit, setup
from nnapp.inside.lrfind import END, START, lr_find, lr_find_payload, range_test, search_key, suggest, text_plot
from nnapp.tasks.run import run_or_follow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def data_for(config):
    return split(load("mnist"), config.val_fraction, config.seed, config.train_subset)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_the_suggestion_is_a_rate_that_trains(tiny, optimizer):
    config = tiny.replace(optimizer=optimizer)
    data = data_for(config)
    found = lr_find(config, data)
    assert found.stopped in ("end", "exploded") and len(found.lrs) >= 50
    assert found.lrs[0] == pytest.approx(START) and found.lrs[1] / found.lrs[0] == pytest.approx((END / START) ** (1 / 99))
    assert found.suggestion is not None and 1e-4 < found.suggestion < 1, found.message
    assert found.message.startswith(f"Suggested learning rate {found.suggestion:.1e}")
    trained = fit(config.replace(lr=found.suggestion, epochs=2), data)
    timid = fit(config.replace(lr=START * 100, epochs=2), data)  # the far left of the range barely moves
    assert trained.test["accuracy"] > 0.7 and timid.test["accuracy"] < 0.4, (trained.test["accuracy"], timid.test["accuracy"])


def test_the_model_and_optimiser_are_restored(tiny):
    config = tiny.replace(model="cnn", conv=((4, 3, 2),), hidden=(8,), batch_norm=True, optimizer="sgd")
    loop = setup(config, data_for(config), pick_device(), None, None)
    before = {k: v.clone() for k, v in loop.model.state_dict().items()}
    result = range_test(loop, steps=30)
    assert len(result.lrs) > 10
    after = loop.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and batch-norm statistics
    assert loop.optimizer.state_dict()["state"] == {} and loop.optimizer.param_groups[0]["lr"] == config.lr
    assert all(p.grad is None for p in loop.model.parameters())


def test_a_diverging_setting_gets_no_suggestion_and_says_why(tiny):
    config = tiny.replace(optimizer="sgd", momentum=0.99, hidden=(256, 256))
    found = lr_find(config, data_for(config), start=10.0, end=1000.0)
    assert found.stopped == "exploded" and found.suggestion is None
    assert found.message.startswith(f"No suggestion: the loss exploded after {len(found.lrs)} steps")
    flat = lr_find(tiny, data_for(tiny), end=1e-5)  # rates far too small to move the loss
    assert flat.suggestion is None and flat.message.startswith("No suggestion: the loss did not fall")


def test_the_suggestion_is_the_steepest_descent_before_the_lowest_point():
    logs = np.linspace(-7, 1, 81)
    losses = 2 - 1.5 / (1 + np.exp(-(logs + 3) / 0.4))  # falls fastest at 1e-3
    losses[60:70] = np.linspace(0.6, 8.0, 10)  # explodes...
    losses[70:] = 2.3  # ...and drops back, its units dead: a steeper fall that is no place to train
    lr, message = suggest(list(10**logs), list(losses))
    assert lr == pytest.approx(1e-3) and "falls fastest" in message
    assert suggest(list(10 ** logs[:12]), list(losses[:12]))[0] is None  # too few points


def test_finding_is_cached_per_config_without_its_rate(store, tiny):
    key, payload = lr_find_payload(tiny)
    first, state = run_or_follow(store, "lr_find", key, payload)
    assert state == "claimed" and first.is_done() and first.result["suggestion"]
    again, state = run_or_follow(store, "lr_find", key, payload)
    assert state == "cached" and again.finished == first.finished
    # the test ignores the rate, schedule and length: putting its suggestion into the config keeps the finding
    assert search_key(tiny.replace(lr=first.result["suggestion"], epochs=9, schedule="onecycle")) == key
    assert search_key(tiny.replace(batch_size=64)) != key
    plot = text_plot(first.result)
    assert plot.count("*") >= 30 and f"^ {first.result['suggestion']:.1e}" in plot


def test_cli_lr_find_prints_the_plot_and_the_suggestion(home):
    env = {**os.environ, "NNAPP_HOME": str(home)}
    args = ["--preset", "seed-mlp", "--set", "train_subset=1000", "--set", "batch_size=32"]
    cmd = [sys.executable, "-m", "nnapp", "lr-find", *args]
    first = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "learning rate (log scale)" in first.stdout and "Suggested learning rate" in first.stdout
    second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert second.stdout.startswith("loaded from cache") and second.stdout.endswith(first.stdout)
    for bad in (["--start", "5", "--end", "1"], ["--steps", "3"], ["--set", "lr=-1"], ["--preset", "nope"]):
        proc = subprocess.run([*cmd, *bad], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and proc.stderr.startswith("nnapp: error:"), (bad, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
