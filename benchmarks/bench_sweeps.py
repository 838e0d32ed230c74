"""Benchmark section 16: a sweep, one and two trials at a time, and the same sweep again from the store."""

from __future__ import annotations

import os
import tempfile
import time

from nnapp.engine.presets import PRESETS
from nnapp.store.store import Store


def bench_sweeps(table, trials: int) -> None:
    """A sweep of `trials` trials around the fast preset (on 10,000 MNIST digits), one at a time with every core,
    then two at a time with half the cores each; then the same sweep again, served from the store."""
    from nnapp.sweep.driver import Driver, LocalExecutor
    from nnapp.sweep.spec import SweepSpec, check, parse_param

    base = PRESETS["fast"].replace(train_subset=10_000)
    params = (parse_param("lr=3e-3:3e-2:log"), parse_param("batch_size=64,128,256"))
    rows, walls = [], {}
    for parallel in (1, 2):
        store = Store(tempfile.mkdtemp(prefix="nnapp-bench-sweep-"))
        spec = check(SweepSpec(f"bench-{parallel}", base, params, trials=trials, parallel=parallel, sampler="random"))
        start = time.perf_counter()
        Driver(spec, store, LocalExecutor(spec, store)).run()
        walls[parallel] = time.perf_counter() - start
        train = sum(r.train_seconds or 0 for r in store.runs())
        speedup = walls[1] / walls[parallel]
        threads = max(1, (os.cpu_count() or 1) // parallel)
        rows.append(
            [
                f"{parallel} at a time, {threads} thread{'s' * (threads > 1)} each",
                walls[parallel],
                train,
                speedup,
                speedup / parallel,
            ]
        )
    replay = check(SweepSpec("bench-replay", base, params, trials=trials, parallel=2, sampler="random"))
    start = time.perf_counter()
    Driver(replay, store, LocalExecutor(replay, store)).run()
    rows.append(["the same sweep again (every trial a cache hit)", time.perf_counter() - start, 0.0, "-", "-"])
    rows += tpe_rows(base, params, trials)
    table(
        f"16. Sweep of {trials} trials around the fast preset on 10,000 images, random sampler unless said "
        "(wall seconds, job start-up included)",
        ["trials", "wall s", "training s (sum)", "speed-up vs one at a time", "parallel efficiency (speed-up / N)"],
        rows,
    )


def tpe_rows(base, params, trials: int) -> list[list]:
    """The same sweep with TPE two at a time, whose later asks depend on the scores seen, then again: every
    trial of the repeat should come from the store, whichever trial ended first in the first run."""
    from nnapp.sweep.driver import Driver, LocalExecutor
    from nnapp.sweep.spec import SweepSpec, check
    from nnapp.sweep.study import read_study, trial_run

    store, rows = Store(tempfile.mkdtemp(prefix="nnapp-bench-sweep-tpe-")), []
    for name in ("bench-tpe", "bench-tpe-again"):
        spec = check(SweepSpec(name, base, params, trials=max(trials, 6), parallel=2, sampler="tpe"))
        start = time.perf_counter()
        Driver(spec, store, LocalExecutor(spec, store)).run()
        wall = time.perf_counter() - start
        sources = [trial_run(t).get("source") for t in read_study(store.home, name).trials]
        label = f"{spec.trials} trials, TPE, 2 at a time" + (": again" if name.endswith("again") else "")
        rows.append([f"{label} ({sources.count('cached')} of {len(sources)} from the store)", wall, 0.0, "-", "-"])
    return rows
