"""nnapp against the seed's training loop, measured side by side in one run on this machine.

    .venv/bin/python benchmarks/bench.py            # all but the best preset (sections 1-6 about 8 minutes on 2 CPU cores)
    .venv/bin/python benchmarks/bench.py --only 16              # a sweep, one and two trials at a time, and its replay
    .venv/bin/python benchmarks/bench.py --best     # also trains the best preset (about 3 minutes more)
    .venv/bin/python benchmarks/bench.py --quick    # fewer repeats, no default/best preset training
    .venv/bin/python benchmarks/bench.py --only 7 8 9 10 11   # what a user waits for: launch, drawing, a busy machine, CLI
    .venv/bin/python benchmarks/bench.py --only 17           # the Train page polling vs rerunning while a run trains
    .venv/bin/python benchmarks/bench.py --only 12           # the not-a-digit check: families compared, its costs
    .venv/bin/python benchmarks/bench.py --only 13 14 15     # inside the network: histograms, t-SNE, activations
    .venv/bin/python benchmarks/bench.py --only 18           # what each workaround of a library's internals gains
    .venv/bin/python benchmarks/bench.py --only 19           # a room: 1, 8, 30 sessions drawing at once, and a training
    .venv/bin/python benchmarks/bench.py --only 20           # what a stranger's uploads leave in a shared server
    .venv/bin/python benchmarks/bench.py --only 21           # a newcomer's first walk: one click to a test accuracy
    .venv/bin/python benchmarks/bench.py --only 22           # a data set of your own: 3 drawn classes, its speed, saving a drawing

Prints one table per comparison: medians over repeats, and the ratios.
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import app_timing  # noqa: E402
import bench_compat  # noqa: E402  (section 18)
import bench_inside  # noqa: E402  (sections 13-15, beside this file)
import bench_owndata  # noqa: E402  (section 22)
import bench_room  # noqa: E402  (section 19)
import bench_sweeps  # noqa: E402  (section 16)
import bench_walk  # noqa: E402  (section 21)
import notdigit  # noqa: E402
import speed  # noqa: E402

from nnapp.engine.config import RunConfig  # noqa: E402
from nnapp.engine.data import BUNDLED, IDX_FILES, load, split  # noqa: E402
from nnapp.engine.device import autocast, device_label, pick_device, use_bf16  # noqa: E402
from nnapp.engine.metrics import to_pixels  # noqa: E402
from nnapp.engine.models import build_model  # noqa: E402
from nnapp.engine.presets import PRESETS  # noqa: E402
from nnapp.engine.registry import LOSSES  # noqa: E402
from nnapp.engine.train import fit, make_optimizer  # noqa: E402
from nnapp.jobs.runs import train_or_load  # noqa: E402
from nnapp.predict.images import preprocess  # noqa: E402
from nnapp.predict.inference import for_inference, predict, probabilities  # noqa: E402
from nnapp.store.store import Store  # noqa: E402
from nnapp.system.compat import keep_freed_memory  # noqa: E402


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n## {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(_fmt(v) for v in row) + " |")
    sys.stdout.flush()


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.0f}"
    return str(v)


# --- the seed's loop ------------------------------------------------------------------------------


class SeedCNN(nn.Module):
    """The seed's CNN, with the flatten size it should have had (64×5×5)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(64 * 5 * 5, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def torchvision_root() -> Path:
    """torchvision's MNIST reads uncompressed IDX files from ROOT/MNIST/raw/."""
    root = Path(tempfile.gettempdir()) / "nnapp-bench-mnist"
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in IDX_FILES.values():
        target = raw / name.removesuffix(".gz")
        if not target.exists():
            with gzip.open(BUNDLED / name) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return root


def seed_loop(epochs: int = 1, max_batches: int | None = None, target: float | None = None, device=None):
    """The seed's loop: torchvision MNIST + ToTensor + DataLoader(64, shuffle) + Adam 1e-3.

    Returns (samples/s over the timed batches, seconds of training, test accuracy per epoch).
    """
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    device = device or pick_device()
    torch.manual_seed(0)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train = datasets.MNIST(str(torchvision_root()), train=True, download=False, transform=tf)
    test = datasets.MNIST(str(torchvision_root()), train=False, download=False, transform=tf)
    loader = DataLoader(train, batch_size=64, shuffle=True)
    model = SeedCNN().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    seconds, samples, accs = 0.0, 0, []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        for i, (x, y) in enumerate(loader):
            if max_batches and i >= max_batches:
                break
            x, y = x.to(device), y.to(device)
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            samples += len(y)
        seconds += time.perf_counter() - start
        if target is not None or max_batches is None:
            accs.append(seed_test(model, test, device))
            if target is not None and accs[-1] >= target:
                break
    return samples / seconds, seconds, accs


@torch.no_grad()
def seed_test(model, test, device) -> float:
    model.eval()
    x = test.data.unsqueeze(1).float().div(255).sub(0.1307).div(0.3081).to(device)
    return (model(x).argmax(1).cpu() == test.targets).float().mean().item()


# --- the engine and the bare compute limit -----------------------------------------------------------


def engine_rate(config: RunConfig, data, device) -> float:
    """Training samples/s of nnapp's loop over its first epoch (validation excluded)."""
    rows = []
    fit(config.replace(epochs=1), data, device, on_progress=lambda p: rows.extend(p.steps))
    # time between the first and last flushed steps: no warm-up, no evaluation
    a, b = rows[len(rows) // 10], rows[-1]
    return (b["step"] - a["step"]) * config.batch_size / (b["elapsed"] - a["elapsed"])


def bare_rate(config: RunConfig, data, device, steps: int = 300) -> float:
    """forward/backward/step over batches made before the clock starts: what no data pipeline can beat.

    The batches are real training digits, one per step, so the loop computes on the same data as the
    engine and reads each batch's memory fresh, as any pipeline must; only the batching is gone.
    """
    bf16 = use_bf16(config, device)
    torch.manual_seed(0)
    model = build_model(config).to(device)
    bs = config.batch_size
    idx = torch.randperm(len(data.train_x))[: (steps + 10) * bs]
    xs = to_pixels(data.train_x[idx], device).split(bs)
    ys = data.train_y[idx].to(device).split(bs)
    if config.model == "cnn" and device.type != "mps":
        model = model.to(memory_format=torch.channels_last)
        xs = [x.contiguous(memory_format=torch.channels_last) for x in xs]
    opt = make_optimizer(config, model, device)  # the same optimiser and loss: only the pipeline differs
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if i == 10:
            sync(device)
            start = time.perf_counter()
        with autocast(device, bf16):
            out = model(x)
        loss = LOSSES[config.loss](out.float(), y, config.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    return steps * bs / (time.perf_counter() - start)


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# --- sections ----------------------------------------------------------------------------------------


def bench_seed_vs_engine(device, repeats: int, data) -> None:
    batches = 300
    seed_rates = [seed_loop(max_batches=batches, device=device)[0] for _ in range(repeats)]
    cfg = PRESETS["seed-cnn"]
    eng_fp32 = [engine_rate(cfg.replace(precision="fp32"), data, device) for _ in range(repeats)]
    eng_auto = [engine_rate(cfg, data, device) for _ in range(repeats)]
    s = statistics.median(seed_rates)
    table(
        "1. Seed loop vs engine: the seed's CNN, batch 64, Adam 1e-3 (training samples/s)",
        ["loop", "samples/s (median)", "× seed loop"],
        [
            ["seed loop (torchvision MNIST + ToTensor + DataLoader)", s, 1.0],
            ["nnapp engine, precision fp32, channels_last", statistics.median(eng_fp32), statistics.median(eng_fp32) / s],
            [
                f"nnapp engine, precision auto (= {'bf16' if use_bf16(cfg, device) else 'fp32'} here), channels_last",
                statistics.median(eng_auto),
                statistics.median(eng_auto) / s,
            ],
        ],
    )


def bench_engine_vs_bare(device, repeats: int, data) -> None:
    rows = []
    for name in ("fast", "seed-cnn", "default", "seed-mlp"):
        cfg = PRESETS[name]
        # Interleaved, so that a slow spell of a shared machine hits both sides alike.
        pairs = [(engine_rate(cfg, data, device), bare_rate(cfg, data, device)) for _ in range(repeats + 2)]
        eng = statistics.median(p[0] for p in pairs)
        bare = statistics.median(p[1] for p in pairs)
        ratio = statistics.median(p[0] / p[1] for p in pairs)
        prec = "bf16" if use_bf16(cfg, device) else "fp32"
        rows.append([name, cfg.batch_size, prec, eng, bare, ratio])
    table(
        "2. Engine vs pure compute: same model, batch size and precision (training samples/s)",
        ["preset", "batch", "precision", "engine", "bare loop", "engine / bare (median of pairs)"],
        rows,
    )


def bench_time_to_accuracy(device, seeds: list[int], with_default: bool, with_best: bool) -> Store:
    store = Store(tempfile.mkdtemp(prefix="nnapp-bench-runs-"))
    rows = []
    fast = [train_or_load(PRESETS["fast"].replace(seed=s), store) for s in seeds]
    accs = [r.accuracy for r in fast]
    secs = [r.train_seconds for r in fast]
    rows.append(
        ["fast", f"{min(accs):.2%} – {max(accs):.2%}", statistics.median(secs), f"{min(secs):.1f} – {max(secs):.1f}", len(seeds)]
    )
    for name, on in (("default", with_default), ("best", with_best)):
        if on:
            run = train_or_load(PRESETS[name], store)
            rows.append([name, f"{run.accuracy:.2%}", run.train_seconds, "-", 1])
    seed_runs = [seed_loop(epochs=5, target=0.985, device=device) for _ in seeds[:2]]
    seed_secs = [r[1] for r in seed_runs]
    seed_accs = [r[2][-1] for r in seed_runs]
    rows.append(
        [
            "seed loop to 98.5%",
            f"{min(seed_accs):.2%} – {max(seed_accs):.2%}",
            statistics.median(seed_secs),
            f"{min(seed_secs):.1f} – {max(seed_secs):.1f}",
            len(seed_runs),
        ]
    )
    table(
        "3. Time to accuracy (seconds of training, MNIST test set)",
        ["run", "test accuracy", "seconds (median)", "spread", "seeds"],
        rows,
    )
    return store


def bench_cache(store: Store) -> None:
    config = PRESETS["fast"]
    times = []
    for _ in range(20):
        start = time.perf_counter()
        run = train_or_load(config, store)
        times.append(time.perf_counter() - start)
    assert run.status == "done"
    table("4. Cache hit: train_or_load of a finished config", ["median s", "max s"], [[statistics.median(times), max(times)]])


def bench_predict(repeats: int = 300) -> None:
    from tests.digits import render

    # One torch thread, as in the app's own process: it predicts from a fresh Streamlit script thread on
    # every rerun, where a multi-threaded op would first start a new OpenMP team (tens of milliseconds).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    canvases = [render(d, box=(40 + 5 * d, 30, 150, 200), width=18) for d in range(10)]
    rows = []
    for name in ("fast", "default", "best", "seed-cnn", "seed-mlp"):
        torch.manual_seed(0)
        model = for_inference(build_model(PRESETS[name]))
        digit = preprocess(canvases[0]).digit
        for _ in range(20):
            predict(model, canvases[0])
        path, call = [], []
        for i in range(repeats):
            canvas = canvases[i % 10]
            start = time.perf_counter()
            predict(model, canvas)
            path.append(time.perf_counter() - start)
            start = time.perf_counter()
            probabilities(model, digit)
            call.append(time.perf_counter() - start)
        ms = lambda xs, q: float(np.percentile(xs, q)) * 1000  # noqa: E731
        rows.append([name, ms(path, 50), ms(path, 99), ms(call, 50), ms(call, 99)])
    torch.set_num_threads(threads)
    table(
        "5. Prediction latency, 280×280 RGBA canvas -> probabilities, one torch thread as in the app (ms)",
        ["preset", "canvas path p50", "canvas path p99", "model call p50", "model call p99"],
        rows,
    )


def bench_cli_and_memory() -> None:
    """The whole `python -m nnapp train --preset fast --force` command: wall time and peak RSS."""
    home = tempfile.mkdtemp(prefix="nnapp-bench-cli-")
    env = {**os.environ, "NNAPP_HOME": home}
    rows = []
    for preset in ("fast",):
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, preset],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
        if proc.returncode:
            print(proc.stderr)
        rss_mb = float(proc.stdout.strip().splitlines()[-1])
        acc = next((line.split()[2] for line in proc.stdout.splitlines() if line.startswith("test")), "?")
        rows.append([f"python -m nnapp train --preset {preset} --force", wall, acc, rss_mb])
    table("6. The whole CLI command and its memory", ["command", "wall s", "test accuracy", "peak RSS MiB"], rows)


# Runs the CLI in-process and reports its own peak RSS. VmHWM, not ru_maxrss: Linux carries
# ru_maxrss over from the forking parent (this benchmark, gigabytes in) across exec.
CHILD = """
import sys
from nnapp.__main__ import main
code = main(["train", "--preset", sys.argv[1], "--force", "--quiet"])
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(int(hwm.split()[1]) / 1024)
sys.exit(code)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one repeat, two seeds, skip the default and best presets")
    parser.add_argument("--best", action="store_true", help="also train the best preset (minutes)")
    parser.add_argument("--only", nargs="*", type=int, help="run only these sections (1-22)")
    args = parser.parse_args()
    keep_freed_memory()  # as nnapp's training processes do (its sections train in this process)
    device = pick_device()
    repeats = 1 if args.quick else 3
    seeds = [0, 1] if args.quick else [0, 1, 2]
    only = set(args.only or range(1, 23))
    print(f"# nnapp benchmark, {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"device: {device_label(device)} · torch {torch.__version__} · {platform.machine()}")
    print(f"CPU: {speed.cpu_description()}")
    t0 = time.perf_counter()
    data = split(load("mnist"), 0.1, 0)
    if 1 in only:
        bench_seed_vs_engine(device, repeats, data)
    if 2 in only:
        bench_engine_vs_bare(device, repeats, data)
    store = None
    if 3 in only:
        store = bench_time_to_accuracy(device, seeds, with_default=not args.quick, with_best=args.best)
    if 4 in only:
        store = store or Store(tempfile.mkdtemp(prefix="nnapp-bench-runs-"))
        train_or_load(PRESETS["fast"], store)
        bench_cache(store)
    if 5 in only:
        bench_predict(100 if args.quick else 300)
    if 6 in only:
        bench_cli_and_memory()
    if 7 in only or 8 in only:
        app_timing.bench_app(table, repeats=2 if args.quick else 20)  # one training varies by 10-20% from the next here
    if 9 in only:
        speed.bench_contention(table, repeats=1 if args.quick else 2)
    if 10 in only:
        speed.bench_cli_startup(table, repeats=3 if args.quick else 5)
    if 11 in only:
        speed.bench_fast_vs_reference(seeds, table)
    if 12 in only:
        presets = ["fast", "seed-mlp"] if args.quick else ["fast", "default", "seed-mlp"]
        notdigit.bench_not_a_digit(table, presets, store, 100 if args.quick else 300)
    if 13 in only:
        bench_inside.bench_histograms(table, device, data, repeats)
    if 14 in only:
        bench_inside.bench_projector(table)
    if 15 in only:
        bench_inside.bench_activations(table, 100 if args.quick else 200)
    if 16 in only:
        bench_sweeps.bench_sweeps(table, 4 if args.quick else 8)
    if 17 in only:
        app_timing.bench_poll_vs_rerun(table, rounds=2 if args.quick else 4)
    if 18 in only:
        bench_compat.bench_compat(table, rounds=2 if args.quick else 3)
    if 19 in only:
        bench_room.bench_room(table, sessions=(1, 8) if args.quick else (1, 8, 30), seconds=15 if args.quick else 30)
    if 20 in only:
        bench_compat.bench_upload_guard(table)
    if 21 in only:
        bench_walk.bench_first_contact(table, repeats=1 if args.quick else 3)
    if 22 in only:
        bench_owndata.bench_owndata(table, seeds, rounds=3 if args.quick else 7, saves=10 if args.quick else 20)
    print(f"\nbenchmark took {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
