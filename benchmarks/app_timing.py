"""What a user of the running app waits for, timed in headless Chromium: used by bench.py.

    .venv/bin/python benchmarks/app_timing.py    # both measurements once, on a fresh store

Needs Debian's chromium at /usr/bin/chromium and Playwright (the dev requirements).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.appserver import ARGS, CHROMIUM, context_switches, serve  # noqa: E402
from tests.digits import canvas_path  # noqa: E402

PLACES = [(70, 40, 130, 200), (15, 15, 70, 100), (150, 130, 100, 130), (20, 10, 240, 260)]
ONE_STROKE = [0, 1, 2, 3, 4, 5, 6, 7]  # a prediction appears once, after the mouse-up timed


@contextlib.contextmanager
def browser_page(executable: str = CHROMIUM):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        try:
            yield page
        finally:
            browser.close()


def settle(page, timeout: float = 60_000) -> None:
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=timeout)


def mouse_up_to_prediction(url: str, drawings: int = 8, executable: str = CHROMIUM) -> list[float]:
    """Seconds from releasing the mouse after the last stroke of a digit to its prediction on the page."""
    times = []
    with browser_page(executable) as page:
        page.goto(url + "/playground")
        page.get_by_text("Draw a digit").first.wait_for(timeout=120_000)
        settle(page)
        for i in range(drawings):
            digit = ONE_STROKE[i % len(ONE_STROKE)]
            canvas = page.locator("canvas.upper-canvas").first
            canvas.wait_for(state="visible", timeout=60_000)
            page.wait_for_timeout(500)  # a cleared canvas is a new component: let it mount
            box = canvas.bounding_box()
            (stroke,) = canvas_path(digit, PLACES[i % len(PLACES)])
            page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
            page.mouse.down()
            for (x0, y0), (x1, y1) in itertools.pairwise(stroke):
                for t in (0.5, 1.0):
                    page.mouse.move(box["x"] + x0 + (x1 - x0) * t, box["y"] + y0 + (y1 - y0) * t)
            page.evaluate(  # awaited as a promise: wait_for_function would poll on every animation frame meanwhile
                "() => { window.__shown = new Promise((resolve, reject) => { new MutationObserver((_, obs) => {"
                " if (document.querySelector('[data-testid=predicted-digit]')) { resolve(performance.now()); obs.disconnect(); }"
                " }).observe(document.body, {childList: true, subtree: true, characterData: true, attributes: true});"
                " setTimeout(() => reject(new Error('no prediction within 60 s')), 60000); }); }"
            )
            start = page.evaluate("() => performance.now()")
            page.mouse.up()
            times.append((page.evaluate("() => window.__shown") - start) / 1000)
            settle(page)
            old = canvas.element_handle()
            page.get_by_role("button", name="Clear").click()
            old.wait_for_element_state("hidden", timeout=60_000)  # a cleared canvas is a new component
            page.get_by_text("Draw a digit").first.wait_for(timeout=60_000)
            settle(page)
    return times


# Installed in the page before the click: the click's time, and when the first progress (a step past 0 in
# Streamlit's bar, or in the curves component's, which lives in a shadow root) and the result are in the
# page. Playwright's own waits look again only every 0.5 s after their first 0.3 s, which overstated both
# by up to that much. Checked by a timer every 16 ms until the first progress (a timer, not
# requestAnimationFrame, which would make the browser draw frames), then on each change of the page. The
# benchmark awaits window.__launchDone: Playwright's wait_for_function would call into the page every 0.5 s.
WATCH_LAUNCH = """() => {
  const ev = window.__launch = {};
  let ended;
  window.__launchDone = new Promise((resolve, reject) => {  // awaited without polling the page
    ended = resolve;
    setTimeout(() => reject(new Error("no result within 600 s of the launch")), 600000);
  });
  const now = () => performance.now();
  document.addEventListener("click", () => { if (!("click" in ev)) ev.click = now(); }, true);
  const step = /step [1-9]/;
  const progress = () => {
    const bar = document.querySelector("[data-testid=stProgress]");
    if (bar && step.test(bar.textContent)) return true;
    for (const el of document.querySelectorAll("*")) {
      const text = el.shadowRoot && el.shadowRoot.querySelector(".live-text");
      if (text && step.test(text.textContent)) return true;
    }
    return false;
  };
  const result = () => [...document.querySelectorAll("[data-testid=stAlertContentSuccess]")].some((e) => e.textContent.includes("Test accuracy"));
  const timer = setInterval(() => {
    if (!("click" in ev)) return;
    if (!("first" in ev) && progress()) ev.first = now();
    if (!("done" in ev) && result()) { ev.done = now(); ended(); }
    if ("first" in ev) clearInterval(timer);
  }, 16);
  new MutationObserver((_, obs) => {
    if ("first" in ev && !("done" in ev) && result()) { ev.done = now(); ended(); obs.disconnect(); }
  }).observe(document.body, { childList: true, subtree: true, characterData: true });
}"""


def click_to_result(url: str, preset: str = "fast") -> dict:
    """Train page, `preset`, retrain: seconds from the Launch click to the first progress and to the result
    in the page (WATCH_LAUNCH), and the CPU-seconds the browser and the server used meanwhile."""
    with browser_page() as page:
        page.goto(url + "/train")
        page.get_by_text("Start from a preset").first.wait_for(timeout=120_000)
        settle(page)
        page.get_by_label("Start from a preset").first.click()
        page.get_by_role("option", name=preset, exact=True).click()
        settle(page)
        page.get_by_text("Retrain even if this configuration finished before").click()
        settle(page)
        page.wait_for_timeout(4000)  # let the page's job process finish warming up, as it has while a user fills in the form
        page.evaluate(WATCH_LAUNCH)
        cpu = {who: cpu_seconds(who) for who in WATCHERS}
        page.get_by_role("button", name="Launch").click()
        page.evaluate("() => window.__launchDone")  # not wait_for_function: its polls would load the page meanwhile
        used = {who: cpu_seconds(who) - cpu[who] for who in WATCHERS}  # before the browser closes
        ev = page.evaluate("() => window.__launch")
    return {"first_progress": (ev["first"] - ev["click"]) / 1000, "done": (ev["done"] - ev["click"]) / 1000, **used}


WATCHERS = ("chromium", "streamlit run")  # the processes besides the job's: the browser and the app's server


def cpu_by_pid(command: str) -> dict[int, float]:
    """CPU-seconds used so far by each process whose command line contains `command`."""
    import psutil

    used = {}
    for p in psutil.process_iter(["cmdline"]):
        if command in " ".join(p.info["cmdline"] or ()):
            with contextlib.suppress(psutil.Error):
                used[p.pid] = sum(p.cpu_times()[:2])
    return used


def at_rest(command: str, seconds: float = 5.0) -> tuple[float, float]:
    """CPU milliseconds and context switches a second of the processes whose command line contains `command`,
    over `seconds` (every thread; Linux's /proc)."""
    import psutil

    def sample() -> tuple[float, int]:
        cpu, switches = 0.0, 0
        for p in psutil.process_iter(["cmdline"]):
            if command in " ".join(p.info["cmdline"] or ()):
                with contextlib.suppress(psutil.Error, OSError):
                    cpu += sum(p.cpu_times()[:2])
                    switches += context_switches(p.pid)
        return cpu, switches

    before = sample()
    time.sleep(seconds)
    after = sample()
    return (after[0] - before[0]) * 1000 / seconds, (after[1] - before[1]) / seconds


def cpu_seconds(command: str) -> float:
    return sum(cpu_by_pid(command).values())


@contextlib.contextmanager
def training_in_background(home: str | Path):
    """The default preset training from the CLI meanwhile (a different store: the app's is not touched)."""
    env = {**os.environ, "NNAPP_HOME": str(Path(home) / "background")}
    cmd = [sys.executable, "-m", "nnapp", "train", "--preset", "default", "--force", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(8)  # past its start-up: training
        yield
    finally:
        proc.kill()
        proc.wait()


def check_ready(store, key: str, timeout: float = 300) -> float:
    """Seconds until the run's not-a-digit check, made by the job's process after training, is stored; then
    waits until every job process is idle (a spare waiting for a job): nothing of the app's runs beside the
    CLI's turn."""
    from nnapp.predict import ood

    start = time.perf_counter()
    while ood.load_stats(store, key) is None and time.perf_counter() - start < timeout:
        time.sleep(0.1)
    ready = time.perf_counter() - start
    while time.perf_counter() - start < timeout:
        before = cpu_by_pid("nnapp.tasks")
        time.sleep(0.5)
        after = cpu_by_pid("nnapp.tasks")  # a process that ended or started meanwhile: not idle yet
        if before.keys() == after.keys() and sum(after.values()) - sum(before.values()) < 0.05:
            break
    return ready


def launch_and_rest(app, cli, key: str) -> tuple[float, float]:
    """The two trainings of `key` split at the step the CLI's reached after 1 s (the app's page renders the
    launch then, on the same CPUs): the app's extra seconds up to that step, and app / CLI after it."""
    times = [{row["step"]: row["elapsed"] for row in store.steps(key)} for store in (app, cli)]
    step = min((s for s, t in times[1].items() if t >= 1.0), default=max(times[1]))
    at = [t[min(s for s in t if s >= step)] for t in times]
    trained = [store.get(key).train_seconds for store in (app, cli)]
    return at[0] - at[1], (trained[0] - at[0]) / max(trained[1] - at[1], 1e-9)


def median_interval(values: list[float], level: float = 0.9, draws: int = 5000, seed: int = 0) -> tuple[float, float]:
    """The `level` bootstrap interval of the median of `values`: how far the median of this many launches
    moves from run to run on this machine (its trainings vary by 10-20% from one to the next)."""
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    tail = (1 - level) / 2
    return medians[int(tail * draws)], medians[min(int((1 - tail) * draws), draws - 1)]


def bench_app(table, repeats: int = 3) -> None:
    """Sections 7 and 8: launch to result in the Train page against the CLI, and drawing to prediction."""
    from nnapp.engine.presets import PRESETS
    from nnapp.jobs.runs import train_or_load
    from nnapp.store.store import Store

    home = tempfile.mkdtemp(prefix="nnapp-app-timing-")
    key = train_or_load(PRESETS["fast"], Store(home)).key
    cli_home = tempfile.mkdtemp(prefix="nnapp-app-timing-cli-")
    rows = []
    cmd = [sys.executable, "-m", "nnapp", "train", "--preset", "fast", "--force", "--quiet"]

    def cli_turn() -> float:
        subprocess.run(cmd, cwd=ROOT, env={**os.environ, "NNAPP_HOME": cli_home}, capture_output=True, check=True)
        return Store(cli_home).get(key).train_seconds

    with serve(home) as url:
        time.sleep(2)  # past its start
        rest = at_rest("streamlit run")
        # Each launch sits between two CLI trainings and is compared with their mean: one training here can take
        # 10-20% longer than the one before it, and a drift over the minute moves both neighbours alike.
        before = cli_turn()
        for _ in range(repeats):
            app = click_to_result(url)
            app_train = Store(home).get(key).train_seconds
            check = check_ready(Store(home), key)  # the job's background work, before the CLI's turn
            after = cli_turn()
            cli_train, cli_drift, before = (before + after) / 2, after / before, after
            rows.append(
                [app["first_progress"], app["done"], app_train, cli_train, app_train / cli_train, app["done"] - cli_train]
            )
            rows[-1] += [*launch_and_rest(Store(home), Store(cli_home), key), app["chromium"], app["streamlit run"], check]
            rows[-1].append(cli_drift)  # how far apart two CLI trainings a launch apart are: the noise on app / CLI
        idle = mouse_up_to_prediction(url)
        with training_in_background(home):
            busy = mouse_up_to_prediction(url)
    table(
        f"7. Launch in the app (fast preset, retrain; headless Chromium on the same machine), {len(rows)} launches "
        "each between two CLI trainings: seconds, and the medians",
        [
            "click → first progress",
            "click → result",
            "training in the app",
            "training from the CLI (mean of the runs before and after)",
            "app / CLI",
            "click → result − CLI training",
            "app − CLI in the CLI's first second (the CLI run after)",
            "app / CLI after it",
            "browser CPU-s, click → result",
            "server CPU-s, click → result",
            "not-a-digit check ready after the result",
            "CLI after / CLI before (no app in either)",
        ],
        [*rows, [statistics.median(column) for column in zip(*rows, strict=True)]],
    )
    ratios, drifts = [row[4] for row in rows], [row[-1] for row in rows]
    print(
        f"\napp / CLI over the {len(rows)} launches: median {statistics.median(ratios):.3f}, 90% interval "
        f"{'–'.join(f'{v:.3f}' for v in median_interval(ratios))}; the CLI against itself (after / before): median "
        f"{statistics.median(drifts):.3f}, {'–'.join(f'{v:.3f}' for v in median_interval(drifts))} (bootstrap)"
    )
    print(f"the server at rest before the launches: {rest[0]:.1f} ms of CPU and {rest[1]:.0f} context switches a second")
    ms = lambda xs, f: f(xs) * 1000  # noqa: E731
    table(
        f"8. Playground: mouse-up → predicted digit shown (ms, {len(idle)} drawings each)",
        ["while", "p50", "max"],
        [["idle", ms(idle, statistics.median), ms(idle, max)], ["a training runs", ms(busy, statistics.median), ms(busy, max)]],
    )


def bench_poll_vs_rerun(table, rounds: int = 4) -> None:
    """Section 17: the same launch on a page that polls while the run trains (serve.py) and on one that
    reruns every 2 s (`streamlit run app.py`), both served at once over stores of their own; each round runs
    the two in alternating order (the second launch of a round tends to be the slower), then the CLI."""
    from nnapp.engine.presets import PRESETS
    from nnapp.store.store import Store

    key = PRESETS["fast"].key()
    homes = {mode: tempfile.mkdtemp(prefix=f"nnapp-app-timing-{mode}-") for mode in ("poll", "rerun")}
    cli_home = tempfile.mkdtemp(prefix="nnapp-app-timing-cli-")
    rows = []
    with serve(homes["poll"]) as polling, serve(homes["rerun"], script="app.py") as rerunning:
        urls = {"poll": polling, "rerun": rerunning}
        for r in range(rounds):
            got = {}
            for mode in ("poll", "rerun") if r % 2 == 0 else ("rerun", "poll"):
                app = click_to_result(urls[mode])
                check_ready(Store(homes[mode]), key)
                got[mode] = (Store(homes[mode]).get(key).train_seconds, app["chromium"], app["done"])
            cmd = [sys.executable, "-m", "nnapp", "train", "--preset", "fast", "--force", "--quiet"]
            subprocess.run(cmd, cwd=ROOT, env={**os.environ, "NNAPP_HOME": cli_home}, capture_output=True, check=True)
            cli = Store(cli_home).get(key).train_seconds
            rows.append([r + 1, *got["poll"], *got["rerun"], cli, got["poll"][0] / got["rerun"][0]])
    medians = ["median", *(statistics.median(column) for column in list(zip(*rows, strict=True))[1:])]
    table(
        f"17. The Train page polling (serve.py) vs rerunning every 2 s (app.py) while the fast preset trains, "
        f"{rounds} rounds, order alternating: seconds and browser CPU-s",
        [
            "round",
            "polling: training",
            "browser CPU-s",
            "click → result",
            "rerunning: training",
            "browser CPU-s",
            "click → result",
            "CLI training",
            "polling / rerunning training",
        ],
        [*rows, medians],
    )


def main() -> None:
    from bench import table

    bench_app(table, repeats=1)


if __name__ == "__main__":
    main()
