"""The paths that make nnapp feel fast, checked for what they do (their timings are in benchmarks/bench.py)."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import nnapp.engine.device as device
import nnapp.system.process as process
from nnapp.engine.data import load
from nnapp.engine.device import ThreadGovernor
from nnapp.engine.train import fit
from nnapp.jobs.manager import JobManager, warm_pool
from nnapp.jobs.warmpool import WarmPool

ROOT = Path(__file__).resolve().parent.parent


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
        for proc in taken:
            proc.kill()


def test_the_queue_moves_on_while_a_finished_job_makes_its_check(store, tiny):
    """The not-a-digit check comes after a run is done, in its job's process: the job ends for the queue
    (the next one may start) while the check is still being made, and the check lands afterwards."""
    from nnapp.predict import ood

    jobs = JobManager(store, threads=1)
    try:
        sub = jobs.submit(tiny.replace(seed=11))
        assert jobs.wait(sub.key, timeout=180)
        assert store.get(sub.key).status == "done" and ood.load_stats(store, sub.key) is None
        task_weights = store.get(sub.key).weights_sha256
        # made as the run's "not_a_digit" task, which a page asking meanwhile attaches to instead of making it again;
        # its statistics are written just before the task is marked done, so the wait is on the task
        deadline = time.monotonic() + 180
        task = store.tasks.get(ood.task_key(store.get(sub.key)))
        while (task is None or task.status != "done") and time.monotonic() < deadline:
            time.sleep(0.2)
            task = store.tasks.get(ood.task_key(store.get(sub.key)))
        assert task is not None and task.status == "done"
        assert ood.load_stats(store, sub.key) is not None
        # A retrain whose weights come out the same to the bit (one thread: the same sums) keeps that check:
        # its job's process does not make it again beside whatever runs next.
        retrain = jobs.submit(tiny.replace(seed=11), force=True)
        assert jobs.wait(retrain.key, timeout=180) and store.get(sub.key).weights_sha256 == task_weights
        for proc in jobs._finishing:
            proc.wait(60)
        assert store.tasks.get(ood.task_key(store.get(sub.key))).finished == task.finished
    finally:
        jobs.shutdown()


def test_a_worker_hears_its_job_end_without_reading_the_store_meanwhile(store, tiny, monkeypatch):
    """The job's process says ENDED on its stdout: its worker moves on at once, and while the job trains it
    reads the job's record once a WORD_WAIT_S, not ten times a second."""
    import nnapp.jobs.manager as jobs_module

    monkeypatch.setattr(jobs_module, "WORD_WAIT_S", 30.0)  # only the word (or the process's exit) can wake it in time
    jobs = JobManager(store, threads=1)
    reads = []
    ended = jobs._ended
    monkeypatch.setattr(jobs, "_ended", lambda job: reads.append(time.monotonic()) or ended(job))
    try:
        sub = jobs.submit(tiny.replace(seed=12))
        assert jobs.wait(sub.key, timeout=180)
        done = time.monotonic()
        run = store.get(sub.key)
        assert run.status == "done"
        assert done - reads[-1] < 1.0 and len(reads) <= 3  # one look before the job's process was waited on, one after its word
        assert any(p.poll() is None for p in jobs._finishing)  # it moved on while the process still makes its check
    finally:
        jobs.shutdown()


class Machine:
    """CPU samples as the governor reads them: `others` CPUs busy besides this process's 1.5."""

    def __init__(self, monkeypatch):
        self.t, self.busy, self.own, self.threads = 100.0, 50.0, 10.0, None
        monkeypatch.setattr(device, "cpu_sample", lambda: (self.t, self.busy, self.own))
        monkeypatch.setattr(process, "cpu_sample", lambda: (self.t, self.busy, self.own))
        monkeypatch.setattr(process, "_clock", lambda: self.t)
        monkeypatch.setattr(process, "_noted", [])
        monkeypatch.setattr(device, "set_threads", lambda n: setattr(self, "threads", n))

    def passes(self, seconds: float, others: float) -> None:
        self.t += seconds
        self.busy += (1.5 + others) * seconds
        self.own += 1.5 * seconds


@pytest.mark.parametrize(
    "others, most, expected",
    [(0.0, 2, 2), (0.2, 2, 2), (0.5, 2, 2), (0.8, 2, 1), (1.0, 2, 1), (1.9, 2, 1), (0.9, 4, 3), (3.5, 4, 1), (0.0, 1, 1)],
)
def test_the_thread_governor_leaves_the_cpus_of_a_neighbour_that_stays_busy(monkeypatch, others, most, expected):
    """Threads go down once two looks in a row find the rest of the machine keeping `others` CPUs busy."""
    machine = Machine(monkeypatch)
    governor = ThreadGovernor(most)
    machine.passes(0.6, others)
    assert governor.tick() == most  # one look: maybe a burst, over by now
    machine.passes(0.6, others)
    assert governor.tick() == expected
    assert (machine.threads or most) == expected
    machine.passes(0.1, 0.0)  # within LOOK_EVERY of the last look: nothing changes
    assert governor.tick() == expected
    machine.passes(0.6, 0.0)  # the neighbour has gone: all threads back at the next look
    assert governor.tick() == most


def test_a_burst_shorter_than_two_looks_leaves_the_threads_alone(monkeypatch):
    machine = Machine(monkeypatch)
    governor = ThreadGovernor(2)
    for others in (1.0, 0.1, 1.0, 0.2, 0.9, 0.0):  # a browser redrawing now and then
        machine.passes(0.6, others)
        assert governor.tick() == 2
    assert machine.threads is None


def test_a_neighbour_busy_before_the_training_is_seen_before_its_first_step(monkeypatch):
    machine = Machine(monkeypatch)
    process.note_machine()  # as the CLI does before it imports torch, and a job process while it waits
    machine.passes(2.0, 1.0)  # torch imports beside a spinning neighbour
    assert ThreadGovernor(2).threads == 1 and machine.threads == 1
    monkeypatch.setattr(process, "_noted", [])
    process.note_machine()
    machine.passes(2.0, 0.1)  # a quiet machine: all threads
    assert ThreadGovernor(2).threads == 2


def test_a_job_process_judges_its_first_threads_on_the_second_before_its_job(monkeypatch):
    """It notes the machine each second while it waits: the look is at the stretch between its last two
    notes, not at the launch that sent the job (the server's rerun, the browser's redraw)."""
    machine = Machine(monkeypatch)
    for busy_before, burst, expected in ((0.1, 1.9, 2), (1.0, 0.0, 1)):
        monkeypatch.setattr(process, "_noted", [])
        process.note_machine()
        machine.passes(1.0, busy_before)
        process.note_machine()
        machine.passes(0.3, burst)  # the job arrives with the launch
        assert ThreadGovernor(2).threads == expected


def test_the_thread_governor_sees_a_real_busy_neighbour():

    if device.cpu_count() < 2 or process.cpu_sample() is None:
        pytest.skip("needs Linux and two CPUs")
    before = torch.get_num_threads()
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        process.note_machine()
        time.sleep(1.0)
        assert ThreadGovernor(2).threads == 1  # it looked at once, over the second since the note
    finally:
        spinner.kill()
        spinner.wait()
        torch.set_num_threads(before)


def test_decoded_data_is_kept_for_the_next_process(tmp_path, monkeypatch):
    from nnapp.engine.data import BUNDLED, IDX_FILES, read_idx, read_idx_cached

    monkeypatch.setenv("NNAPP_DATA", str(tmp_path))
    path = BUNDLED / IDX_FILES["test_y"]
    first = read_idx_cached(path)
    (cached,) = (tmp_path / "decoded").iterdir()
    assert (read_idx_cached(path) == read_idx(path)).all() and (first == read_idx(path)).all()
    cached.write_bytes(b"not an array")  # a damaged cache is not used
    assert (read_idx_cached(path) == read_idx(path)).all()
    assert load("mnist").test_y.dtype == torch.int64
