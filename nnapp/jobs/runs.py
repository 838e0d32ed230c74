"""Runs in the store: train a config with its progress and result written down, or serve the stored one."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import numpy as np
import torch

from nnapp.engine import datasets
from nnapp.engine.checks import Checked, trainable
from nnapp.engine.config import ConfigError, RunConfig
from nnapp.engine.data import Split, load, split
from nnapp.engine.device import ThreadGovernor, pick_device
from nnapp.engine.records import Claim, Progress, Run, base_key
from nnapp.engine.states import ClaimState, Status
from nnapp.engine.train import Callback, ProgressFn, fit
from nnapp.store.recorder import HistogramRecorder
from nnapp.store.stops import stop_file
from nnapp.store.store import Store
from nnapp.store.weights import RunDeleted


def prepare(config: RunConfig, store: Store) -> tuple[Split, dict[str, torch.Tensor] | None]:
    """The data split for `config`, with the personal drawings it names, and its starting weights."""
    if datasets.is_ref(config.dataset):
        store.freeze(config.dataset)  # done when it was claimed; a range test is not claimed as a run
    data = split(load(config.dataset), config.val_fraction, config.seed, config.train_subset)
    init_state = store.load_weights(config.init_from) if config.init_from else None
    if config.personal:
        images, labels, _ = store.drawings()
        if not len(labels) or personal_fingerprint(images, labels) != config.personal:
            raise ConfigError({"personal": "the personal drawings changed since this run was configured"})
        # A handful of drawings among 54,000 digits would barely be seen; repeat them so each
        # epoch shows them about as often as one MNIST class shows a tenth of its digits.
        repeat = max(1, len(data.train_x) // (100 * len(labels)))
        data = Split(
            train_x=torch.cat([data.train_x, torch.from_numpy(images).repeat(repeat, 1, 1)]),
            train_y=torch.cat([data.train_y, torch.from_numpy(labels).repeat(repeat)]),
            val_x=data.val_x,
            val_y=data.val_y,
            test_x=data.test_x,
            test_y=data.test_y,
        )
    return data, init_state


def personal_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    h = hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()[:12]


def run_and_store(
    config: RunConfig,
    store: Store,
    should_stop: Callable[[], bool] | None = None,
    on_progress: ProgressFn | None = None,
    callbacks: list[Callback] | None = None,
    key: str | None = None,
) -> str:
    """Train `config` with its progress and result written to `store` under `key` (the one store.claim
    gave; the config's own by default); returns the final status.

    The run row must exist (store.claim). Any error marks it failed with the message and re-raises.
    """
    key = key or config.key()
    store.set_status(key, Status.RUNNING, message="", progress=None)
    governor = ThreadGovernor(torch.get_num_threads()) if pick_device().type == "cpu" else None
    try:
        data, init_state = prepare(config, store)

        def progress(p: Progress) -> None:
            store.set_progress(key, p.as_state(), p.steps, p.epoch_row)
            if governor:
                governor.tick()
            if on_progress:
                on_progress(p)

        recorder = HistogramRecorder(store, key)  # every run records its weight and gradient histograms
        result = fit(
            config,
            data,
            on_progress=progress,
            should_stop=should_stop,
            init_state=init_state,
            callbacks=[recorder, *(callbacks or ())],
        )
        store.finish(key, result)
        return result.status
    except KeyboardInterrupt:
        store.set_status(key, Status.CANCELLED, message="interrupted from the keyboard")
        raise
    except BaseException as err:
        store.set_status(key, Status.FAILED, message=str(err) or type(err).__name__)
        raise


def train_or_load(
    config: Checked | RunConfig,
    store: Store | None = None,
    force: bool = False,
    on_progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_claim: Callable[[Claim], None] | None = None,
) -> Run:
    """The stored run for `config` if it finished before (no training); if another process is training
    it, that run once it ends (followed, not trained twice); else train it now.

    `force=True` retrains a finished run; the stored one stays until the retrain has succeeded. A run (or
    its retrain) deleted while it trains stops and keeps nothing: RunDeleted says so.
    Returns the run as it ended (for a retrain that did not succeed: the retrain's record). A Checked
    config is not checked again (a RunConfig is checked here: nnapp.engine.checks.trainable).
    """
    store = store or Store()
    config = trainable(config, store.get)
    claim = store.claim(config, force=force)
    if on_claim:
        on_claim(claim)
    if claim.state == ClaimState.ATTACHED:
        return _or_deleted(follow(store, claim.key, on_progress), claim.key)
    if claim.state == ClaimState.CLAIMED:
        stop = stop_file(store, claim.key)  # Cancel in the app reaches a run the CLI trains too
        stop.clear()
        stopped = (lambda: stop.is_set() or should_stop()) if should_stop else stop.is_set
        try:
            run_and_store(config, store, should_stop=stopped, on_progress=on_progress, key=claim.key)
        finally:
            stop.clear()
    return _or_deleted(store.get(claim.key) or store.get(base_key(claim.key)), claim.key)


def _or_deleted(run: Run | None, key: str) -> Run:
    """The run as it ended; RunDeleted when someone deleted it meanwhile (deleting wins: nothing is kept)."""
    if run is None:
        raise RunDeleted(base_key(key))
    return run


def follow(store: Store, key: str, on_progress: ProgressFn | None = None, every: float = 0.2) -> Run:
    """Wait for a run another process trains, passing its live progress on; returns it once it ended."""
    last = None
    while (run := store.get(key)) is not None and run.is_active():
        if not run.is_live():  # its process died (or its pid is another's now): the store marks it, nothing to wait for
            store.mark_interrupted()
            continue
        if on_progress and run.progress and run.progress != last:
            last = run.progress
            on_progress(Progress.from_state(run.progress))
        time.sleep(every)
    return run or store.get(base_key(key))  # a retrain that succeeded has become its run


def wait_for_run(store: Store, key: str, until: Callable[[Run | None], bool], timeout: float, every: float = 0.05) -> Run | None:
    """Read the run's record every `every` seconds until `until(record)` holds or `timeout` seconds have
    passed; returns the last record read (None: there is none, e.g. a retrain promoted into its run)."""
    deadline = time.monotonic() + timeout
    while True:
        run = store.get(key)
        if until(run) or time.monotonic() >= deadline:
            return run
        time.sleep(every)


def finetune_config(parent: RunConfig, parent_key: str, images: np.ndarray, labels: np.ndarray) -> RunConfig:
    """A run that starts from `parent`'s weights and trains one short epoch on MNIST plus the personal drawings."""
    return parent.replace(
        init_from=parent_key,
        personal=personal_fingerprint(images, labels),
        epochs=1,
        lr=parent.lr / 5,
        schedule="cosine",
        patience=0,
    )


def continue_config(parent: RunConfig, parent_key: str, epochs: int) -> RunConfig:
    """A run that continues `parent` for `epochs` more: its network, data and settings, starting from its
    weights (the optimiser starts afresh). A schedule that anneals would warm up to the full rate again and
    undo what the run settled on, so it goes on from a tenth of the rate, annealed by cosine (a run that was
    itself continued goes on at its own rate)."""
    anneals = parent.schedule != "constant" and not parent.init_from
    return parent.replace(
        init_from=parent_key,
        epochs=epochs,
        lr=parent.lr / 10 if anneals else parent.lr,
        schedule="cosine" if anneals else parent.schedule,
    )


SHAPING = ("model", "conv", "padding", "hidden", "batch_norm")  # fields that decide the weights' shapes


def continue_problem(parent: RunConfig, config: RunConfig) -> str | None:
    """Why `config` cannot start from `parent`'s weights: another network, or a data set with other classes
    or images of another shape (a newer version of the same data set is fine)."""
    changed = [name for name in SHAPING if getattr(parent, name) != getattr(config, name)]
    if changed:
        verb = "differs" if len(changed) == 1 else "differ"
        return f"a continued run keeps the network of the run it continues; its {', '.join(changed)} {verb}"
    old, new = parent.data_spec(), config.data_spec()
    if old.classes != new.classes or old.input_shape != new.input_shape:
        return f"a continued run needs a data set with the same classes and images as {datasets.base_name(parent.dataset)}"
    return None
