"""The paths that make nnapp feel fast, checked for what they do (their timings are in benchmarks/bench.py)."""

import time

import pytest
import torch

import nnapp.device as device
from nnapp.data import load
from nnapp.device import ThreadGovernor
from nnapp.jobs import JobManager, warm_pool
from nnapp.train import fit
from nnapp.warmpool import WarmPool


def test_a_launch_reports_its_first_step_at_once(tiny):
    first = []
    fit(tiny.replace(epochs=1), on_progress=lambda p: first.append(p) if not first else None)
    assert first[0].steps and first[0].steps[0]["step"] == 1 and first[0].step == 1


def test_jobs_run_in_a_process_started_before_the_launch(store, tiny):
    jobs = JobManager(store)
    try:
        jobs.warm()
        ready = warm_pool().pids()
        assert ready, "no process was made ready"
        sub = jobs.submit(tiny)
        assert jobs.wait(sub.key, timeout=120)
        run = store.get(sub.key)
        assert run.status == "done" and run.pid in ready  # trained by the process that was waiting
        assert warm_pool().pids() and run.pid not in warm_pool().pids()  # and it was replaced, not reused
    finally:
        jobs.shutdown()


def test_a_spare_started_under_other_environment_variables_is_not_used(monkeypatch):
    """A spare would run its job under the environment it was started with (a memory limit, a data folder)."""
    pool, taken = WarmPool(), []
    try:
        pool.fill(1)
        (old,) = pool.pids()
        taken.append(pool.take())
        assert taken[0].pid == old  # same environment: the spare is used
        pool.fill(1)
        (spare,) = pool.pids()
        monkeypatch.setenv("NNAPP_MEMORY_LIMIT", "1G")
        taken.append(pool.take())
        assert taken[1].pid != spare and spare not in pool.pids()  # a fresh one; the old spare is gone
    finally:
        pool.close()
        for process in taken:
            process.kill()


def test_the_queue_moves_on_while_a_finished_job_makes_its_check(store, tiny):
    """The not-a-digit check comes after a run is done, in its job's process: the job ends for the queue
    (the next one may start) while the check is still being made, and the check lands afterwards."""
    from nnapp import ood

    jobs = JobManager(store)
    try:
        sub = jobs.submit(tiny.replace(seed=11))
        assert jobs.wait(sub.key, timeout=180)
        assert store.get(sub.key).status == "done" and ood.load_stats(store, sub.key) is None
        deadline = time.monotonic() + 180
        while ood.load_stats(store, sub.key) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ood.load_stats(store, sub.key) is not None
        # made as the run's "not_a_digit" task, which a page asking meanwhile attaches to instead of making it again
        assert store.task(ood.task_key(store.get(sub.key))).status == "done"
    finally:
        jobs.shutdown()


@pytest.mark.parametrize(
    "others, most, expected",
    [(0.0, 2, 2), (0.2, 2, 2), (0.5, 2, 2), (0.8, 2, 1), (1.0, 2, 1), (1.9, 2, 1), (0.9, 4, 3), (3.5, 4, 1), (0.0, 1, 1)],
)
def test_the_thread_governor_leaves_the_busy_cpus_alone(monkeypatch, others, most, expected):
    """Fed CPU samples where the rest of the machine kept `others` CPUs busy, it keeps that many threads free."""
    clock = {"t": 100.0, "busy": 50.0, "own": 10.0}
    monkeypatch.setattr(device, "_cpu_sample", lambda: (clock["t"], clock["busy"], clock["own"]))
    monkeypatch.setattr(device, "set_threads", lambda n: clock.__setitem__("threads", n))
    governor = ThreadGovernor(most, every=2.0)
    own = 1.5 * 4  # this process kept 1.5 CPUs busy for the 4 s
    clock.update(t=104.0, busy=50.0 + own + others * 4, own=10.0 + own)
    assert governor.tick() == expected
    assert clock.get("threads", most) == expected
    clock.update(t=105.0)  # within `every` of the last look: nothing changes
    assert governor.tick() == expected


def test_the_thread_governor_sees_a_real_busy_neighbour():
    import subprocess
    import sys
    import time

    if device.cpu_count() < 2 or device._cpu_sample() is None:
        pytest.skip("needs Linux and two CPUs")
    before = torch.get_num_threads()
    governor = ThreadGovernor(2, every=1.0)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.5)
        assert governor.tick() == 1
    finally:
        spinner.kill()
        spinner.wait()
        torch.set_num_threads(before)


def test_decoded_data_is_kept_for_the_next_process(tmp_path, monkeypatch):
    from nnapp.data import BUNDLED, IDX_FILES, read_idx, read_idx_cached

    monkeypatch.setenv("NNAPP_DATA", str(tmp_path))
    path = BUNDLED / IDX_FILES["test_y"]
    first = read_idx_cached(path)
    (cached,) = (tmp_path / "decoded").iterdir()
    assert (read_idx_cached(path) == read_idx(path)).all() and (first == read_idx(path)).all()
    cached.write_bytes(b"not an array")  # a damaged cache is not used
    assert (read_idx_cached(path) == read_idx(path)).all()
    assert load("mnist").test_y.dtype == torch.int64
