"""Guards for the engine's speed that do not time anything."""

import sys

import torch

from nnapp.engine.data import load, split
from nnapp.engine.train import fit


def python_calls_during(fn) -> int:
    calls = 0

    def profiler(frame, event, arg):
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(profiler)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def test_hot_loop_has_no_per_sample_python(tiny, monkeypatch):
    """The Python work per step must not grow with the batch: 8x the images in as many steps, the same calls."""

    def no_dataloader(self):
        raise AssertionError("the training loop iterated a DataLoader")

    monkeypatch.setattr(torch.utils.data.DataLoader, "__iter__", no_dataloader)
    small = tiny.replace(batch_size=16, epochs=1, train_subset=300, val_fraction=0.1)  # 270 images: 16 steps
    large = small.replace(batch_size=128, train_subset=2400)  # 2,160 images: 16 steps
    assert small.steps_per_epoch() == large.steps_per_epoch() == 16
    images = load("mnist")
    small_calls = python_calls_during(lambda: fit(small, split(images, 0.1, 0, 300)))
    large_calls = python_calls_during(lambda: fit(large, split(images, 0.1, 0, 2400)))
    assert large_calls < small_calls * 1.2, (small_calls, large_calls)


def test_fast_preset_reaches_99_percent_on_seed_0(fast_run):
    _, run = fast_run
    assert run.status == "done"
    assert run.accuracy >= 0.99, run.accuracy
