"""Section 19: a newcomer's first walk in headless Chromium, timed: Home → "Train my first model" → its test
accuracy → "Draw a digit for it" → a drawn 7 → the answer (tests/gestures.first_contact), on a fresh store each
time, beside the CLI's whole `train --preset fast` in the same run.

    .venv/bin/python benchmarks/bench.py --only 21

The browser runs on the server's machine here (a user's runs on their own): its CPU is counted against the walk.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.appserver import ARGS, CHROMIUM, serve  # noqa: E402
from tests.gestures import first_contact  # noqa: E402


def cli_fast() -> float:
    """Seconds of a whole `python -m nnapp train --preset fast` on a fresh store."""
    home = tempfile.mkdtemp(prefix="nnapp-walk-cli-")
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "nnapp", "train", "--preset", "fast", "--quiet"]
    subprocess.run(cmd, cwd=ROOT, env={**os.environ, "NNAPP_HOME": home}, check=True, capture_output=True)
    return time.perf_counter() - start


def one_walk() -> dict:
    from playwright.sync_api import sync_playwright

    from nnapp.engine.presets import PRESETS
    from nnapp.store.store import Store

    home = tempfile.mkdtemp(prefix="nnapp-walk-")
    with serve(home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        times = first_contact(page, url)
        browser.close()
    run = Store(home).get(PRESETS["fast"].key())
    times.update(queued_to_started=run.started - run.created, training=run.train_seconds, accuracy_pct=100 * run.accuracy)
    return times


def bench_first_contact(table, repeats: int = 3) -> None:
    rows, walks, clis = [], [], []
    for i in range(repeats):
        clis.append(cli_fast())
        walk = one_walk()
        walks.append(walk)
        rows.append(
            [
                i + 1, walk["progress"], walk["accuracy"], walk["answer"], walk["queued_to_started"], walk["training"],
                f"{walk['accuracy_pct']:.2f}%", walk["read"], clis[-1], walk["accuracy"] / clis[-1],
            ]
        )  # fmt: skip
    table(
        "21. A newcomer's first walk: seconds from the first click (browser on the same machine)",
        ["walk", "→ first progress", "→ test accuracy", "→ drawn 7 answered", "queued → training", "training",
         "test accuracy", "answer", "CLI train --preset fast", "walk to accuracy / CLI"],
        rows,
    )  # fmt: skip
    median = statistics.median(w["accuracy"] for w in walks)
    print(f"median first click → test accuracy: {median:.1f} s (CLI whole run {statistics.median(clis):.1f} s)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench import table

    bench_first_contact(table, 1)
