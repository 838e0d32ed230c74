"""Section 19: a room of people drawing at once. N sessions open the Room's audience view (views/draw.py) and draw
a digit every 2-4 s each, every drawing followed by its Clear, as Streamlit's websocket protocol driven from Python
(tests/wsclient.py): no browser runs on the server's CPU. The server runs on CPU 0, the clients on CPU 1 (taskset).

    .venv/bin/python benchmarks/bench.py --only 19
    .venv/bin/python benchmarks/bench_room.py --sessions 1 8 30 --seconds 30

19a: one session drawing back to back on the Draw page and on the Playground: the server's CPU per drawing and per
Clear, apart. 19b: per N, the server's CPU per drawing (its Clear included, and the server's own ticks meanwhile),
p50 / p95 from the drawing's message (the mouse-up) to its answer, answers missing, the server's memory, and its
CPU a second with the N sessions open and idle. 19c: one training (a job process pinned to CPU 1, the CPU left
to it) alone, then while 30 sessions draw for a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.appserver import serve  # noqa: E402
from tests.wsclient import MARKS, Load, Session, cpu_seconds, drive, pictures, server_process  # noqa: E402

SERVER_CPU, CLIENT_CPU = 0, 1


def back_to_back(url: str, page: str, count: int = 40) -> tuple[float, float, float]:
    """One session drawing `count` times without a pause, then drawing and clearing `count` times: the server's
    CPU ms per drawing and per Clear, and the median seconds to the answer."""
    server, shapes = server_process(url), list(pictures().values())

    async def run() -> tuple[float, float, float]:
        session = Session(url, page, MARKS[page])
        await session.open()
        await session.draw(shapes[0])  # the first answer loads the model and the check
        start, delays = cpu_seconds(server), []
        for i in range(count):
            delays.append((await session.draw(shapes[i % len(shapes)]))[0])
        drawn = cpu_seconds(server)
        for i in range(count):
            await session.draw(shapes[i % len(shapes)])
            await session.click("Clear")
        both = cpu_seconds(server) - drawn
        await session.close()
        per_drawing = (drawn - start) / count
        return 1000 * per_drawing, 1000 * (both / count - per_drawing), sorted(delays)[count // 2]

    return asyncio.run(run())


def at_rest(url: str, sessions: int, seconds: float = 10.0) -> float:
    """The server's CPU ms a second with `sessions` sessions open on the Draw page and idle."""
    server = server_process(url)

    async def run() -> float:
        opened = [Session(url, "draw") for _ in range(sessions)]
        await asyncio.gather(*(s.open() for s in opened))
        await asyncio.sleep(2)
        before = cpu_seconds(server)
        await asyncio.sleep(seconds)
        used = cpu_seconds(server) - before
        await asyncio.gather(*(s.close() for s in opened))
        return 1000 * used / seconds

    return asyncio.run(run())


def pin(cpu: int) -> None:
    """This thread (and the processes it starts) onto `cpu`, where the machine has it."""
    with contextlib.suppress(AttributeError, OSError):
        if cpu < (os.cpu_count() or 1):
            os.sched_setaffinity(threading.get_native_id(), {cpu})


def prepared_home() -> str:
    """A store with the fast preset trained and its not-a-digit check made: the room's model."""
    from nnapp.engine.presets import PRESETS
    from nnapp.jobs.runs import train_or_load
    from nnapp.predict import ood
    from nnapp.store.store import Store

    home = tempfile.mkdtemp(prefix="nnapp-room-")
    store = Store(home)
    ood.ensure(store, train_or_load(PRESETS["fast"], store).key)
    return home


HEADER = [
    "sessions", "drawings", "server CPU ms / drawing", "p50 ms", "p95 ms", "answers missing", "server RSS MiB",
    "clients CPU ms / drawing",
]  # fmt: skip


def row(load: Load) -> list:
    p50, p95 = load.quantile(0.5) * 1000, load.quantile(0.95) * 1000
    clients = 1000 * load.client_cpu_s / max(load.drawings, 1)
    return [load.sessions, load.drawings, load.cpu_ms_per_drawing, p50, p95, load.missing, load.rss_mib, clients]


def bench_room(table, sessions=(1, 8, 30), seconds: float = 30.0, training: bool = True) -> None:
    home = prepared_home()
    pin(CLIENT_CPU)
    with serve(home, prefix=("taskset", "-c", str(SERVER_CPU))) as url:
        single = {page: back_to_back(url, page) for page in ("draw", "playground")}
        table(
            "19a. One session drawing back to back (server on CPU 0, client on CPU 1): server CPU ms",
            ["page", "per drawing", "per Clear", "p50 ms to the answer"],
            [[page, *(v if i < 2 else v * 1000 for i, v in enumerate(values))] for page, values in single.items()],
        )
        rows = []
        for n in sessions:
            rows.append([*row(drive(url, n, seconds)), at_rest(url, n)])
        table(
            f"19b. Draw page: N sessions drawing for {seconds:.0f} s, a drawing every 2-4 s each, its Clear included "
            "(server on CPU 0, clients on CPU 1)",
            [*HEADER, "server CPU ms/s, N sessions idle"],
            rows,
        )
        if training:
            bench_training_under_load(table, url, home, max(sessions))


def bench_training_under_load(table, url: str, home: str, sessions: int, seconds: float = 60.0, rounds: int = 3) -> None:
    """One training alone, then while `sessions` people draw for `seconds`, `rounds` times in turn: its job
    process on CPU 1, the CPU the server leaves it. The clients stand for phones, which are not on the server:
    here they share the server's CPU 0, so that CPU 1 holds the training alone."""
    rows = []
    for _ in range(rounds):
        alone, others_alone = train(home)
        result: dict = {}
        crowd = threading.Thread(target=crowd_of, args=(result, url, sessions, seconds))
        crowd.start()
        time.sleep(12)  # every session open and drawing
        busy, others_busy = train(home)
        crowd.join()
        rows.append([alone, busy, busy / alone, others_alone, others_busy, *row(result["load"])[1:]])
    table(
        f"19c. One training ({TRAINING}) alone and while {sessions} sessions draw for {seconds:.0f} s (the clients "
        f"on CPU 0 with the server), {rounds} rounds in turn; other processes' CPU seconds on CPU 1 meanwhile",
        [
            "training alone s",
            "while the room draws s",
            "ratio",
            "others on CPU 1 (and steal) s, alone",
            "the same, room",
            *HEADER[1:],
        ],
        rows,
    )


def crowd_of(result: dict, url: str, sessions: int, seconds: float) -> None:
    """drive() from this thread, on the server's CPU (Linux: affinity is per thread)."""
    pin(SERVER_CPU)
    result["load"] = drive(url, sessions, seconds)


TRAINING = "the fast preset, one epoch on all 54,000 images, one thread, its job process on CPU 1"


def train(home: str) -> tuple[float, float]:
    """Seconds of training of the fast preset (retrained) by a job manager over the server's store, its job
    process started from this thread and so on this thread's CPU (CLIENT_CPU); and the CPU seconds that other
    processes took on that CPU meanwhile (the machine's other tenants, whatever the room does)."""
    from nnapp.engine.presets import PRESETS
    from nnapp.engine.records import base_key
    from nnapp.jobs.manager import JobManager
    from nnapp.store.store import Store

    store = Store(home)
    jobs = JobManager(store, threads=1)
    busy, children = cpu_busy(CLIENT_CPU), resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        submission = jobs.submit(PRESETS["fast"], force=True, check=False)
        jobs.wait(submission.key, timeout=900)
    finally:
        jobs.shutdown()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the job's process, ended and reaped
    job_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return store.get(base_key(submission.key)).train_seconds, max(0.0, cpu_busy(CLIENT_CPU) - busy - job_cpu)


def cpu_busy(cpu: int) -> float:
    """Seconds CPU `cpu` has spent busy since boot (Linux's /proc/stat)."""
    with open("/proc/stat") as f:
        fields = next(line for line in f if line.startswith(f"cpu{cpu} ")).split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", nargs="*", type=int, default=[1, 8, 30])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--no-training", action="store_true")
    args = parser.parse_args()
    from bench import table

    bench_room(table, args.sessions, args.seconds, training=not args.no_training)


if __name__ == "__main__":
    main()
