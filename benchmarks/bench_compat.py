"""Section 18: what each workaround of a library's internals gains (nnapp/system/compat.py, panels/compat.py),
measured with it and without it (NNAPP_WORKAROUNDS_OFF) side by side, interleaved, in one run.

    .venv/bin/python benchmarks/bench.py --only 18

The Playground's timings keep the browser off the server's CPU (the server on CPU 0, Chromium on the
others, with taskset), as a user's browser runs on their own machine.
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

from tests.appserver import CHROMIUM, serve  # noqa: E402

CLI_VARIANTS = {"all on": "", "eager_optimizers off": "eager_optimizers", "keep_freed_memory off": "keep_freed_memory"}
PAGE_VARIANTS = {"all on": "", "canvas_send_delay off": "canvas_send_delay"}


def cli_training(home: str, off: str) -> float:
    """Wall seconds of `python -m nnapp train --preset fast --force` (start, torch, training, test, exit)."""
    env = {**os.environ, "NNAPP_HOME": home, "NNAPP_WORKAROUNDS_OFF": off}
    cmd = [sys.executable, "-m", "nnapp", "train", "--preset", "fast", "--force", "--quiet"]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=True)
    return time.perf_counter() - start


def pinned_browser() -> str:
    """A Chromium that runs on every CPU but the server's (CPU 0); the plain one where there is only one CPU."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return CHROMIUM
    script = Path(tempfile.mkdtemp(prefix="nnapp-chromium-")) / "chromium"
    script.write_text(f'#!/bin/sh\nexec taskset -c {",".join(map(str, cpus[1:]))} {CHROMIUM} "$@"\n')
    script.chmod(0o755)
    return str(script)


def bench_compat(table, rounds: int = 3, drawings: int = 8) -> None:
    from app_timing import mouse_up_to_prediction

    home = tempfile.mkdtemp(prefix="nnapp-compat-")
    cli = {name: [] for name in CLI_VARIANTS}
    cli_training(home, "")  # the data set decoded and cached, the key's run stored: every turn retrains it
    for _ in range(rounds):
        for name, off in CLI_VARIANTS.items():
            cli[name].append(cli_training(home, off))
    base = statistics.median(cli["all on"])
    table(
        f"18a. CLI: `train --preset fast --force`, wall seconds (medians of {rounds}, interleaved)",
        ["workarounds", "seconds", "÷ all on"],
        [[name, statistics.median(t), statistics.median(t) / base] for name, t in cli.items()],
    )
    browser, page = pinned_browser(), {name: [] for name in PAGE_VARIANTS}
    for _ in range(max(1, rounds - 1)):
        for name, off in PAGE_VARIANTS.items():
            with serve(home, env={"NNAPP_WORKAROUNDS_OFF": off}, prefix=("taskset", "-c", "0")) as url:
                page[name] += mouse_up_to_prediction(url, drawings, executable=browser)
    ms = {name: statistics.median(t) * 1000 for name, t in page.items()}
    table(
        "18b. Playground: mouse-up → predicted digit shown, ms (server on CPU 0, Chromium on the others)",
        ["workarounds", "p50", "p90", "− all on"],
        [[n, ms[n], sorted(t)[int(0.9 * (len(t) - 1))] * 1000, ms[n] - ms["all on"]] for n, t in page.items()],
    )


def server_rss(url: str) -> float:
    """MiB resident in the server that answers `url` (found by the port on its command line)."""
    import psutil

    port = url.rsplit(":", 1)[1]
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if "--server.port" in cmd and cmd[cmd.index("--server.port") + 1] == port:
            return proc.memory_info().rss / (1 << 20)
    return float("nan")


def bench_upload_guard(table, uploads: int = 16, mib: int = 8) -> None:
    """Section 20: what a stranger who never signs in leaves in a shared server's memory, by sending files straight
    to Streamlit's upload route, with the guard (serve.py, panels/guard.py; it reads the session id and the upload
    store through panels/compat.py) and without it (app.py served alone)."""
    from playwright.sync_api import sync_playwright

    from tests.test_upload_guard import PASSWORD, Stranger, held

    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        for name, script in (("with the guard (serve.py)", "serve.py"), ("without it (app.py alone)", "app.py")):
            env = {"NNAPP_PASSWORD": PASSWORD}
            with serve(tempfile.mkdtemp(prefix="nnapp-guard-"), address="0.0.0.0", env=env, script=script) as url:
                stranger = Stranger(browser, url)
                stranger.page.get_by_label("Password", exact=True).wait_for(timeout=60_000)
                stranger.page.wait_for_timeout(3_000)  # the page's first run (its imports) is over
                before = server_rss(url)
                codes = [stranger.upload(f"f{i}", mib << 20) for i in range(uploads)]
                kept = held(stranger.page, url) / (1 << 20)
                rows.append([name, f"{codes.count(204)} of {uploads}", kept, server_rss(url) - before])
                stranger.context.close()
        browser.close()
    table(
        f"20. A stranger who never signs in sends {uploads} files of {mib} MiB to the upload route of a shared server",
        ["server", "uploads accepted", "MiB of uploads held", "server memory growth, MiB"],
        rows,
    )
