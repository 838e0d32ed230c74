"""Trials on a Ray cluster: one task per trial; metrics stream back to the driver, which writes the store.

    driver                                   Ray cluster
    store.claim -> train_trial.remote() ---> a worker on any node: fit(), the code and data from the
    pump(): mailbox.take() -> the store  <-- runtime env; progress rows put into the Mailbox actor
    verdict(): mailbox.decide()          --> the Pruning callback waits on mailbox.verdict()
    ray.get(ref) -> store.finish()       <-- the FitResult: weights, test report, predictions

Only the driver touches the run store and the sweep's journal; the nodes need neither, only this package,
data/ (shipped as Ray's working_dir) and the same Python packages (requirements-cluster.txt).
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections import defaultdict
from pathlib import Path

import ray

from nnapp.engine import datasets
from nnapp.engine.checks import Checked
from nnapp.engine.config import RunConfig
from nnapp.engine.data import load
from nnapp.engine.records import FitResult, Progress
from nnapp.engine.states import ClaimState, Status
from nnapp.jobs.manager import Submission
from nnapp.jobs.warmpool import PACKAGE_ROOT
from nnapp.store.store import Store
from nnapp.sweep.spec import SweepError, SweepSpec
from nnapp.sweep.study import to_go

EXCLUDES = [".git", ".venv", "tests", "benchmarks", "test-artifacts", "runs", "**/__pycache__"]
STOP_POLL_S = 0.5


@ray.remote(num_cpus=0)
class Mailbox:
    """Messages between the driver and its trial tasks: progress up, pruning verdicts and stops down."""

    def __init__(self):
        self.up: dict[str, list] = defaultdict(list)
        self.verdicts: dict[tuple[str, int], bool] = {}
        self.stops: set[str] = set()

    def put(self, key: str, message) -> None:
        self.up[key].append(message)

    def take(self) -> dict[str, list]:
        up, self.up = dict(self.up), defaultdict(list)
        return up

    def decide(self, key: str, epoch: int, prune: bool) -> None:
        self.verdicts[(key, epoch)] = prune

    def verdict(self, key: str, epoch: int) -> bool | None:
        return self.verdicts.get((key, epoch))

    def stop(self, key: str) -> None:
        self.stops.add(key)

    def stopped(self, key: str) -> bool:
        return key in self.stops


@ray.remote(max_retries=0)
def train_trial(config: dict, key: str, mailbox, threads: int, pruning: bool, own: dict | None = None) -> FitResult:
    """One trial on whichever node Ray picked: train, stream progress, return the result with its weights.
    `own`: a data set of yours, which the nodes have no store to read: its description and its images."""
    from nnapp.engine.data import split
    from nnapp.engine.device import set_threads
    from nnapp.engine.train import fit
    from nnapp.sweep.pruning import Pruning
    from nnapp.system.compat import keep_freed_memory

    keep_freed_memory()
    set_threads(threads)
    node = {"node": ray.get_runtime_context().get_node_id(), "ip": ray.util.get_node_ip_address()}
    mailbox.put.remote(key, node)
    stopped = threading.Event()
    threading.Thread(target=_watch_stop, args=(mailbox, key, stopped), daemon=True).start()

    def verdict(epoch: int) -> bool:
        while not stopped.is_set():
            answer = ray.get(mailbox.verdict.remote(key, epoch))
            if answer is not None:
                return answer
            time.sleep(0.02)
        return False  # stopped (or the driver went away): no pruning, the loop ends the run as cancelled

    callbacks = [Pruning(verdict)] if pruning else []
    if own is not None:
        datasets.remember(own["description"])
    run = RunConfig.from_dict(config)
    data = split(ray.get(own["images"]), run.val_fraction, run.seed, run.train_subset) if own is not None else None
    result = fit(
        run,
        data,
        on_progress=lambda p: mailbox.put.remote(key, p),
        should_stop=stopped.is_set,
        callbacks=callbacks,
    )
    ray.get(mailbox.stopped.remote(key))  # calls from one caller run in order: every put above has landed
    return result


def _watch_stop(mailbox, key: str, stopped: threading.Event) -> None:
    while not stopped.is_set():
        try:
            if ray.get(mailbox.stopped.remote(key)):
                stopped.set()
        except ray.exceptions.RayError:  # the driver, and its mailbox, went away: stop too
            stopped.set()
        time.sleep(STOP_POLL_S)


def runtime_env(home: Path) -> dict:
    """This package and data/ as the tasks' working directory; the run store and the rest stay here."""
    excludes = list(EXCLUDES)
    if Path(home).resolve().is_relative_to(PACKAGE_ROOT):
        excludes.append("/" + str(Path(home).resolve().relative_to(PACKAGE_ROOT)))
    return {"working_dir": str(PACKAGE_ROOT), "excludes": excludes}


def connect(address: str, home: Path) -> None:
    """ray.init for the driver; an address nobody answers at is one clear error instead of a long wait."""
    host, _, port = address.rpartition(":")
    if host and port.isdigit() and "://" not in address:
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as err:
            raise SweepError({"--ray": f"no Ray cluster answers at {address} ({err.strerror or err})"}) from None
    ray.init(address=address, runtime_env=runtime_env(home), logging_level=logging.WARNING, log_to_driver=False)


def trial_resources(parallel: int) -> dict:
    """CPUs and GPUs each trial asks for: `parallel` trials spread over the nodes, a GPU each where there are GPUs."""
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    cpus = [r["CPU"] for r in nodes if r.get("CPU")] or [1]
    per_node = math.ceil(parallel / len(cpus))
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    return {"num_cpus": max(1, int(min(cpus) // per_node)), "num_gpus": gpus}


class RayExecutor:
    """The executor for Driver: each trial a Ray task; the driver writes what they send to the store."""

    def __init__(self, spec: SweepSpec, store: Store, owner: str | None = None):
        connect(spec.ray, store.home)
        self.store, self.owner = store, owner  # the trials are the sweep owner's runs
        self.mailbox = Mailbox.remote()
        self.resources = trial_resources(min(spec.parallel, to_go(spec, store.home)))
        self.refs: dict[str, ray.ObjectRef] = {}
        self.nodes: dict[str, str] = {}
        self.own: dict[str, dict] = {}  # data sets of yours the trials need, by version

    def __repr__(self) -> str:
        return f"RayExecutor(running={sorted(self.refs)}, resources={self.resources})"

    def submit(self, checked: Checked, pruning: bool) -> Submission:
        config = checked.require()
        claim = self.store.claim(config, owner=self.owner)
        if claim.state != ClaimState.CLAIMED:
            return Submission(claim.key, claim.state)
        task = train_trial.options(**self.resources)
        own = self._own(config)
        self.refs[claim.key] = task.remote(config.to_dict(), claim.key, self.mailbox, self.resources["num_cpus"], pruning, own)
        return Submission(claim.key, ClaimState.QUEUED)

    def _own(self, config: RunConfig) -> dict | None:
        """A data set of yours travels with its trials (its images put in Ray's object store once per version)."""
        if not datasets.is_ref(config.dataset):
            return None
        if config.dataset not in self.own:
            spec = config.data_spec()
            self.own[config.dataset] = {"description": datasets.description_of(spec), "images": ray.put(load(config.dataset))}
        return self.own[config.dataset]

    def pump(self) -> None:
        """What the tasks sent, into the store; the results of those that ended, with their weights."""
        self._take()
        if not self.refs:
            return
        ready, _ = ray.wait(list(self.refs.values()), num_returns=len(self.refs), timeout=0)
        if ready:
            self._take()  # a task's last messages land before its result
        for key, ref in list(self.refs.items()):
            if ref in ready:
                del self.refs[key]
                self._finish(key, ref)

    def _take(self) -> None:
        for key, messages in ray.get(self.mailbox.take.remote()).items():
            for message in messages:
                if isinstance(message, Progress):
                    self.store.set_progress(key, message.as_state(), message.steps, message.epoch_row)
                else:  # the task started: the node it runs on
                    self.nodes[key] = f"{message['ip']} {message['node'][:8]}"
                    self.store.set_status(key, Status.RUNNING, message="", progress=None)

    def _finish(self, key: str, ref: ray.ObjectRef) -> None:
        try:
            self.store.finish(key, ray.get(ref))
        except ray.exceptions.TaskCancelledError:
            self.store.set_status(key, Status.CANCELLED, message="cancelled before it started")
        except ray.exceptions.RayError as err:
            self.store.set_status(key, Status.FAILED, message=str(err).strip().splitlines()[-1][:500])

    def is_active(self, key: str) -> bool:
        return key in self.refs

    def verdict(self, key: str, epoch: int, prune: bool) -> None:
        self.mailbox.decide.remote(key, epoch, prune)

    def cancel(self, key: str) -> None:
        self.mailbox.stop.remote(key)
        if key in self.refs and key not in self.nodes:  # not started yet: take it off Ray's queue
            ray.cancel(self.refs[key])

    def node(self, key: str) -> str | None:
        return self.nodes.get(key)

    def close(self) -> None:
        for ref in self.refs.values():
            ray.cancel(ref, force=True)
        ray.shutdown()
