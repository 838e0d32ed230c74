"""The training loop: plain functions over in-memory tensors, progress through a callback."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnapp.config import ConfigError, RunConfig
from nnapp.data import Split, load, split
from nnapp.models import build_model
from nnapp.store import FINISHED, Store

REPORT_EVERY_STEPS = 20  # flush step metrics at most this many steps apart...
REPORT_EVERY_S = 0.5  # ...or this many seconds apart, whichever comes first
EVAL_BATCH = 2000
# Threads a training process uses, read at import: the app's own process narrows torch to one
# thread for single-digit predictions, but its training jobs run in fresh processes.
TRAINING_THREADS = torch.get_num_threads()


@dataclass
class Progress:
    """What a progress callback receives: new per-step rows, and an epoch row when one ends."""

    step: int
    total_steps: int
    epoch: int  # 1-based epoch in progress (or just finished)
    epochs: int
    samples_per_s: float
    elapsed: float
    steps: list[dict] = field(default_factory=list)
    epoch_row: dict | None = None
    phase: str = "training"  # training, evaluating


@dataclass
class FitResult:
    status: str  # done, cancelled, diverged
    device: str
    precision: str
    train_seconds: float
    epochs: list[dict]
    steps: list[dict]
    state_dict: dict[str, torch.Tensor]
    test: dict | None = None  # accuracy, loss, confusion, precision, recall, f1
    predictions: np.ndarray | None = None  # predicted class of every test image (uint8)
    probabilities: np.ndarray | None = None  # its probability (float32)
    message: str = ""
    diverged_step: int | None = None


def pick_device() -> torch.device:
    """CUDA, then Apple MPS, then CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_label(device: torch.device | None = None) -> str:
    device = device or pick_device()
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU ({TRAINING_THREADS} threads)"


def use_bf16(config: RunConfig, device: torch.device) -> bool:
    """Whether to train under bf16 autocast. 'auto' picks it where it was measured to be faster."""
    if config.precision == "fp32" or device.type == "mps":
        return False
    if config.precision == "bf16":
        return True
    # On CPUs, even with AVX512-BF16, autocast's casts cost more than they save for models this
    # small: fp32 was 1.2-1.5x faster for every preset (benchmarks/bench.py section 2).
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A small random affine per image (±10°, ±10% scale, ±2 px shift), done on the whole batch at once."""
    n = x.shape[0]
    r = (torch.rand(5, n, generator=gen) * 2 - 1).to(x.device)
    angle, scale = r[0] * math.radians(10), 1 + r[1] * 0.1
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    shift = r[2:4] * (2 * 2 / x.shape[-1])  # 2 px in affine_grid's [-1, 1] coordinates
    theta = torch.stack([torch.stack([cos, -sin, shift[0]], 1), torch.stack([sin, cos, shift[1]], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


def loss_fn(config: RunConfig, logits: torch.Tensor, y: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    if config.loss == "mse":
        return F.mse_loss(logits.softmax(1), F.one_hot(y, logits.shape[1]).to(logits.dtype))
    return F.cross_entropy(logits, y, label_smoothing=smoothing)


def make_optimizer(config: RunConfig, model: nn.Module, device: torch.device | None = None) -> torch.optim.Optimizer:
    params = model.parameters()
    # The fused kernels update every tensor in one call instead of a Python loop over parameters.
    fused = {"fused": True} if device is not None and device.type in ("cpu", "cuda") else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, **fused)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, **fused)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, **fused)


def make_schedule(config: RunConfig, steps_per_epoch: int) -> Callable[[int], tuple[float, float | None]] | None:
    """step -> (learning rate, SGD momentum or None) for the config's schedule; None for a constant rate.

    Plain arithmetic, the same as torch's OneCycleLR and LambdaLR work out (a test compares them step by
    step), at about a microsecond a step where a scheduler call takes tens.
    """
    total = steps_per_epoch * config.epochs
    lr = config.lr
    if config.schedule == "onecycle":
        return functools.partial(_one_cycle, max_lr=lr, total=total, cycle_momentum=config.optimizer == "sgd")
    if config.schedule == "cosine":
        return lambda s: (lr * (0.5 * (1 + math.cos(math.pi * min(s, total) / total))), None)
    if config.schedule == "step":
        every = max(1, config.epochs // 3) * steps_per_epoch  # divide by 10 twice over the run
        return lambda s: (lr * 0.1 ** (s // every), None)
    return None


def _one_cycle(step: int, max_lr: float, total: int, cycle_momentum: bool) -> tuple[float, float | None]:
    """torch's OneCycleLR (pct_start 0.25, cosine annealing, momentum 0.95 -> 0.85 -> 0.95 for SGD)."""
    initial = max_lr / 25.0
    warm_end = float(0.25 * total) - 1
    if step <= warm_end:
        pct = step / warm_end if warm_end > 0 else 1.0  # torch divides by zero when the warm-up is one step
        return _anneal(initial, max_lr, pct), _anneal(0.95, 0.85, pct) if cycle_momentum else None
    pct = (step - warm_end) / (total - 1 - warm_end)
    return _anneal(max_lr, initial / 1e4, pct), _anneal(0.85, 0.95, pct) if cycle_momentum else None


def _anneal(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def to_pixels(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 N×28×28 -> float N×1×28×28 in [0, 1] on `device`."""
    return x.to(device).unsqueeze(1).float().div_(255)


@torch.inference_mode()
def predict_logits(model: nn.Module, x: torch.Tensor, device: torch.device, bf16: bool = False) -> torch.Tensor:
    """Logits (float32, CPU) for uint8 images, in large batches."""
    model.eval()
    out = []
    for start in range(0, len(x), EVAL_BATCH):
        xb = to_pixels(x[start : start + EVAL_BATCH], device)
        with autocast(device, bf16):
            out.append(model(xb).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, 10)


def evaluate(
    config: RunConfig, model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, bf16: bool = False
) -> dict:
    """Loss, accuracy and the full test report for images `x` with labels `y`."""
    logits = predict_logits(model, x, device, bf16)
    loss = loss_fn(config, logits, y).item() if len(y) else float("nan")
    probs = logits.softmax(1)
    prob, pred = probs.max(1)
    return {"loss": loss, "accuracy": (pred == y).float().mean().item() if len(y) else float("nan"), "pred": pred, "prob": prob}


def report(y: torch.Tensor, pred: torch.Tensor, classes: int = 10) -> dict:
    """Confusion matrix (rows: true, columns: predicted) and per-class precision, recall and F1."""
    confusion = torch.bincount(y * classes + pred, minlength=classes * classes).reshape(classes, classes)
    tp = confusion.diag().double()
    precision = tp / confusion.sum(0).clamp(min=1)
    recall = tp / confusion.sum(1).clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    return {
        "confusion": confusion.tolist(),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
    }


def fit(
    config: RunConfig,
    data: Split | None = None,
    device: torch.device | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    init_state: dict[str, torch.Tensor] | None = None,
) -> FitResult:
    """Train `config` and evaluate it on the test set.

    Args:
        config: a config with no validation problems.
        data: the split to train on; loaded from the config when omitted.
        device: defaults to pick_device().
        on_progress: called with new step rows every few steps and once at each epoch end.
        should_stop: polled every step; returning True ends the run as cancelled.
        init_state: weights to start from (fine-tuning) instead of a fresh initialisation.
    """
    device = device or pick_device()
    data = data or split(load(config.dataset), config.val_fraction, config.seed, config.train_subset)
    bf16 = use_bf16(config, device)
    channels_last = config.model == "cnn" and device.type != "mps"
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model = build_model(config).to(device)
    if init_state is not None:
        model.load_state_dict(init_state)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(config, model, device)
    n = len(data.train_x)
    bs = config.batch_size
    steps_per_epoch = n // bs
    schedule = make_schedule(config, steps_per_epoch)
    group = optimizer.param_groups[0]
    lr = config.lr
    total_steps = steps_per_epoch * config.epochs

    train_x = to_pixels(data.train_x, device)  # converted once: batches are slices of resident tensors
    train_y = data.train_y.to(device)
    if channels_last:
        train_x = train_x.contiguous(memory_format=torch.channels_last)

    epochs: list[dict] = []
    steps: list[dict] = []
    status, message, diverged_step = "done", "", None
    best = (math.inf, None)  # (validation loss, state) for early stopping
    stale = 0
    step = 0
    start = time.perf_counter()
    train_seconds = 0.0

    def flush(pending: list, t_last: float, epoch: int) -> tuple[list, float, int | None]:
        """Turn the pending on-device losses into rows; returns the first non-finite step, if any."""
        if not pending:
            return pending, t_last, None
        now = time.perf_counter()
        losses = torch.stack([p[1] for p in pending]).float().tolist()
        # accuracy counted here, for all pending steps at once, rather than three small ops per step
        logits, labels = torch.stack([p[2] for p in pending]), torch.stack([p[3] for p in pending])
        correct = (logits.argmax(2) == labels).sum(1).tolist()
        rate = len(pending) * bs / max(now - t_last, 1e-9)
        rows = []
        for (s, _, _, _, lr), loss, c in zip(pending, losses, correct, strict=True):
            if not math.isfinite(loss):
                steps.extend(rows)
                return [], now, s
            rows.append(
                {"step": s, "epoch": epoch, "loss": loss, "acc": c / bs, "lr": lr, "samples_per_s": rate, "elapsed": now - start}
            )
        steps.extend(rows)
        if on_progress:
            on_progress(Progress(step, total_steps, epoch, config.epochs, rate, now - start, steps=rows))
        return [], now, None

    for epoch in range(1, config.epochs + 1):
        model.train()
        epoch_start = time.perf_counter()
        perm = torch.randperm(n, generator=gen).to(device)
        pending: list = []
        t_last = time.perf_counter()
        first_row = len(steps)
        for b in range(steps_per_epoch):
            if should_stop and should_stop():
                status, message = "cancelled", f"cancelled at step {step}"
                break
            idx = perm[b * bs : (b + 1) * bs]
            xb, yb = train_x.index_select(0, idx), train_y.index_select(0, idx)  # 3x faster than x[idx]
            if config.augment:
                xb = augment(xb, gen)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            if schedule is not None:
                lr, momentum = schedule(step)
                group["lr"] = lr
                if momentum is not None:
                    group["momentum"] = momentum
            with autocast(device, bf16):
                logits = model(xb)
            loss = loss_fn(config, logits.float(), yb, config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            pending.append((step, loss.detach(), logits.detach(), yb, lr))
            if len(pending) >= REPORT_EVERY_STEPS or time.perf_counter() - t_last >= REPORT_EVERY_S:
                pending, t_last, bad = flush(pending, t_last, epoch)
                if bad is not None:
                    status, diverged_step = "diverged", bad
                    break
        if status == "done":
            pending, t_last, bad = flush(pending, t_last, epoch)
            if bad is not None:
                status, diverged_step = "diverged", bad
        train_seconds += time.perf_counter() - epoch_start
        if status == "diverged":
            message = f"the loss became non-finite at step {diverged_step}; try a lower learning rate"
        if status != "done":
            break
        if on_progress:
            on_progress(Progress(step, total_steps, epoch, config.epochs, 0.0, time.perf_counter() - start, phase="evaluating"))
        val = evaluate(config, model, data.val_x, data.val_y, device, bf16)
        epoch_steps = steps[first_row:] or [{"loss": float("nan"), "acc": float("nan")}]
        row = {
            "epoch": epoch,
            "train_loss": sum(r["loss"] for r in epoch_steps) / len(epoch_steps),
            "train_acc": sum(r["acc"] for r in epoch_steps) / len(epoch_steps),
            "val_loss": val["loss"],
            "val_acc": val["accuracy"],
            "lr": lr,
            "seconds": time.perf_counter() - epoch_start,
        }
        epochs.append(row)
        if on_progress:
            rate = steps_per_epoch * bs / max(row["seconds"], 1e-9)
            on_progress(Progress(step, total_steps, epoch, config.epochs, rate, time.perf_counter() - start, epoch_row=row))
        if not math.isfinite(val["loss"]):
            status, diverged_step = "diverged", step
            message = f"the validation loss became non-finite after step {step}; try a lower learning rate"
            break
        if config.patience:
            if val["loss"] < best[0]:
                best, stale = (val["loss"], {k: v.detach().clone() for k, v in model.state_dict().items()}), 0
            else:
                stale += 1
                if stale >= config.patience:
                    message = f"stopped early after epoch {epoch}: no better validation loss for {stale} epochs"
                    break

    if status == "done" and best[1] is not None:
        model.load_state_dict(best[1])
    result = FitResult(
        status=status,
        device=device_label(device),
        precision="bf16" if bf16 else "fp32",
        train_seconds=train_seconds,
        epochs=epochs,
        steps=steps,
        state_dict={k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()},
        message=message,
        diverged_step=diverged_step,
    )
    if status == "done":
        if on_progress:
            on_progress(
                Progress(step, total_steps, config.epochs, config.epochs, 0.0, time.perf_counter() - start, phase="testing")
            )
        test = evaluate(config, model, data.test_x, data.test_y, device, bf16)
        result.test = {"accuracy": test["accuracy"], "loss": test["loss"], **report(data.test_y, test["pred"])}
        result.predictions = test["pred"].numpy().astype(np.uint8)
        result.probabilities = test["prob"].numpy().astype(np.float32)
    return result


# --- runs in the store ------------------------------------------------------------------------


def prepare(config: RunConfig, store: Store) -> tuple[Split, dict[str, torch.Tensor] | None]:
    """The data split for `config`, with the personal drawings it names, and its starting weights."""
    data = split(load(config.dataset), config.val_fraction, config.seed, config.train_subset)
    init_state = None
    if config.init_from:
        init_state = store.load_weights(config.init_from)
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


def run_and_store(config: RunConfig, store: Store, should_stop: Callable[[], bool] | None = None, on_progress=None) -> str:
    """Train `config` with its progress and result written to `store`; returns the final status.

    The run row must exist (store.create). Any error marks it failed with the message and re-raises.
    """
    key = config.key()
    store.set_status(key, "running", message="", progress=None)
    try:
        data, init_state = prepare(config, store)

        def progress(p: Progress) -> None:
            done = p.step / max(p.total_steps, 1)
            eta = p.elapsed / done - p.elapsed if done > 0 else None
            state = {
                "step": p.step,
                "total_steps": p.total_steps,
                "epoch": p.epoch,
                "epochs": p.epochs,
                "samples_per_s": p.samples_per_s,
                "elapsed": p.elapsed,
                "eta": eta,
                "phase": p.phase,
            }
            store.set_progress(key, state, p.steps, p.epoch_row)
            if on_progress:
                on_progress(p)

        result = fit(config, data, on_progress=progress, should_stop=should_stop, init_state=init_state)
        store.finish(key, result)
        return result.status
    except KeyboardInterrupt:
        store.set_status(key, "cancelled", message="interrupted from the keyboard")
        raise
    except BaseException as err:
        store.set_status(key, "failed", message=str(err) or type(err).__name__)
        raise


def train_or_load(config: RunConfig, store: Store | None = None, force: bool = False, on_progress=None, should_stop=None):
    """The stored run for `config` if it finished before (no training), else train it now.

    Returns the store's Run. `force=True` retrains a finished run.
    """

    problems = config.validate()
    if problems:
        raise ConfigError(problems)
    store = store or Store()
    key = config.key()
    run = store.get(key)
    if run is not None and run.status in FINISHED and not force:
        return run
    store.create(config, status="queued", parent=config.init_from or None)
    run_and_store(config, store, should_stop=should_stop, on_progress=on_progress)
    return store.get(key)


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


def evaluate_on(model: nn.Module, config: RunConfig, images: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, loss and confusion matrix of a model on a small labelled set (e.g. personal drawings)."""
    x, y = torch.from_numpy(np.asarray(images, np.uint8)), torch.from_numpy(np.asarray(labels, np.int64))
    result = evaluate(config, model, x, y, torch.device("cpu"))
    return {"accuracy": result["accuracy"], "loss": result["loss"], "pred": result["pred"].numpy(), **report(y, result["pred"])}
