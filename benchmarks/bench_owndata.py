"""Section 22: a data set of your own classes, drawn through the canvas path.

    .venv/bin/python benchmarks/bench.py --only 22

22a  3 classes × 100 drawings (generated strokes of a hand that varies, rendered on a 280 px canvas image, made
     examples as the Data page makes them) trained with the small-data preset: test accuracy, seconds of training,
     and the share of 60 new drawings read right, per seed.
22b  the same data set's training against an MNIST subset of the same size and network (the same split sizes,
     augmentation on, every epoch run), samples per second, rounds interleaved, with the ratio; one torch thread
     each, so that a busy neighbour on a shared machine stalls neither side's OpenMP team more than the other's.
22c  saving one drawn example on the Data page: from the mouse-up on Save example to its class's counter moving,
     in Chromium, the server on CPU 0 and Chromium on the others (taskset), as a user's browser runs on their machine.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nnapp.data.examples import as_example  # noqa: E402
from nnapp.engine.data import load, split  # noqa: E402
from nnapp.engine.device import set_threads  # noqa: E402
from nnapp.engine.presets import small_data  # noqa: E402
from nnapp.engine.train import fit  # noqa: E402
from nnapp.jobs.runs import train_or_load  # noqa: E402
from nnapp.predict.images import preprocess  # noqa: E402
from nnapp.predict.inference import for_inference, probabilities  # noqa: E402
from nnapp.store.store import Store  # noqa: E402
from tests.shapes import drawings  # noqa: E402

CLASSES = ["circle", "triangle", "arrow"]


def drawn_store(per_class: int = 100) -> tuple[Store, str]:
    """A store with a data set of `per_class` drawings of each class, made through the canvas path; (store, ref)."""
    store = Store(tempfile.mkdtemp(prefix="nnapp-bench-own-"))
    images, labels = drawings(CLASSES, per_class, seed=0)
    store.create_dataset("shapes", CLASSES)
    made = store.add_examples("shapes", np.stack([as_example(image, 1) for image in images]), labels)
    store.freeze(made.ref)  # its images written, as a launch does
    return store, made.ref


def bench_accuracy(table, store: Store, ref: str, seeds: list[int]) -> None:
    new, truth = drawings(CLASSES, 20, seed=1000)  # drawn anew: never trained on
    rows = []
    for seed in seeds:
        run = train_or_load(small_data(ref).replace(seed=seed), store)
        model = for_inference(store.load_model(run.key)[0])
        read = [int(np.argmax(probabilities(model, preprocess(image).digit))) for image in new]
        epochs = len(store.epochs(run.key))
        rows.append([seed, f"{run.accuracy:.1%}", run.train_seconds, epochs, f"{np.mean(np.array(read) == np.array(truth)):.1%}"])
    table(
        "22a. 3 classes × 100 drawings through the canvas path, preset small-data (early stopping on)",
        ["seed", "test accuracy", "training s", "epochs run", "60 new drawings read right"],
        rows,
    )


def bench_rate(table, ref: str, rounds: int) -> None:
    """Samples per second of the drawn set and of as many MNIST digits, the same network, interleaved rounds."""
    threads = torch.get_num_threads()
    set_threads(1)
    try:
        _rate(table, ref, rounds)
    finally:
        set_threads(threads)


def _rate(table, ref: str, rounds: int) -> None:
    own = small_data(ref).replace(patience=0, epochs=20)
    size = len(load(ref).train_x) - len(split(load(ref), own.val_fraction, own.seed).test_x)  # the drawn set's train + val
    mnist = own.replace(dataset="mnist", train_subset=size)
    data = {
        "drawn": split(load(ref), own.val_fraction, own.seed),
        "MNIST": split(load("mnist"), own.val_fraction, own.seed, size),
    }
    configs = {"drawn": own, "MNIST": mnist}
    assert len(data["drawn"].train_x) == len(data["MNIST"].train_x), "the same number of training images"
    rates = {name: [] for name in configs}
    for name in configs:  # one round first, not counted: the allocator and kernels warmed up for both
        fit(configs[name], data[name])
    for _ in range(rounds):
        for name, config in configs.items():
            result = fit(config, data[name])
            rates[name].append(
                len(data[name].train_x) // config.batch_size * config.batch_size * config.epochs / result.train_seconds
            )
    digits = statistics.median(rates["MNIST"])
    table(
        f"22b. training samples/s, {len(data['drawn'].train_x)} training images, same network and settings, one thread (medians of {rounds}, interleaved)",
        ["data set", "samples/s", "range", "÷ MNIST"],
        [[n, statistics.median(r), f"{min(r):,.0f}–{max(r):,.0f}", statistics.median(r) / digits] for n, r in rates.items()],
    )


def bench_save(table, saves: int) -> None:
    from bench_compat import pinned_browser

    from tests.appserver import serve

    store, _ = drawn_store(per_class=3)
    times = []
    with serve(store.home, prefix=("taskset", "-c", "0")) as url:
        times = save_times(url, saves, pinned_browser())
    ms = sorted(t * 1000 for t in times)
    table(
        "22c. Data page: mouse-up on Save example → the class's counter moved, ms (server on CPU 0, Chromium on the others)",
        ["saves", "p50", "p90", "max"],
        [[len(ms), statistics.median(ms), ms[int(0.9 * (len(ms) - 1))], ms[-1]]],
    )


def save_times(url: str, saves: int, executable: str) -> list[float]:
    """Seconds from releasing the mouse on Save example to the counter showing one more, `saves` times."""
    from app_timing import browser_page, settle

    from tests.shapes import canvas_path, mouse_draw, place, varied

    rng, times = np.random.default_rng(3), []
    with browser_page(executable) as page:
        page.goto(url + "/data")
        page.get_by_text("Draw examples").first.wait_for(timeout=120_000)
        settle(page)
        for i in range(saves):
            page.wait_for_timeout(300)  # a new canvas is a new component: let it mount
            canvas = page.locator("canvas.upper-canvas").first
            mouse_draw(page, canvas, canvas_path(varied(CLASSES[i % 3], rng), place(rng)))
            page.get_by_text("what the network will see").wait_for(timeout=60_000)
            settle(page)
            before = page.locator(".st-key-draw_counter [data-testid=stMetricValue]").inner_text()
            button = page.get_by_role("button", name="Save example").bounding_box()
            page.mouse.move(button["x"] + button["width"] / 2, button["y"] + button["height"] / 2)
            page.mouse.down()
            page.evaluate(  # awaited as a promise: wait_for_function would poll on every animation frame meanwhile
                "(before) => { window.__moved = new Promise((resolve, reject) => { new MutationObserver((_, obs) => {"
                " const e = document.querySelector('.st-key-draw_counter [data-testid=stMetricValue]');"
                " if (e && e.innerText !== before) { resolve(performance.now()); obs.disconnect(); } })"
                ".observe(document.body, {childList: true, subtree: true, characterData: true});"
                " setTimeout(() => reject(new Error('the counter did not move within 60 s')), 60000); }); }",
                before,
            )
            start = page.evaluate("() => performance.now()")
            page.mouse.up()
            times.append((page.evaluate("() => window.__moved") - start) / 1000)
            settle(page)
    return times


def bench_owndata(table, seeds: list[int], rounds: int, saves: int) -> None:
    started = time.perf_counter()
    print(f"\n(load average before section 22: {' '.join(f'{v:.1f}' for v in os.getloadavg())})")
    store, ref = drawn_store()
    print(f"\n(3 × 100 drawings generated and made examples in {time.perf_counter() - started:.1f} s; data set {ref})")
    bench_accuracy(table, store, ref, seeds)
    bench_rate(table, ref, rounds)
    bench_save(table, saves)
    print(f"\n(load average after section 22: {' '.join(f'{v:.1f}' for v in os.getloadavg())})")
