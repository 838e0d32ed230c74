"""Words for runs and numbers: a run's readable name made from what sets its config apart, numbers to three
significant digits, and the columns in which listed runs differ. No torch import."""

from __future__ import annotations

import math
from collections.abc import Iterable

from nnapp.engine.config import RunConfig

DEFAULT = RunConfig()


def sig3(value: float | int | None) -> str:
    """A number to three significant digits, short: 0.000552553 -> '5.53e-4', 0.0552 -> '0.0552', 128 -> '128'."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) and abs(value) < 100_000:
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    if 0.01 <= abs(value) < 100_000:
        return f"{value:.3g}"
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def images(count: int) -> str:
    """'5k images', '600 images', '12.5k images'."""
    return f"{sig3(count / 1000)}k images" if count >= 1000 else f"{count} images"


def default_name(config: RunConfig) -> str:
    """A name made from what sets the run apart, e.g. 'cnn 16-32 · lr 3e-3 · 1 ep · 5k images'.

    The network, its learning rate and epochs always; every other field only where it differs from the default."""
    if config.model == "cnn":
        arch = "cnn " + "-".join(str(c[0]) for c in config.conv)
    else:
        arch = "mlp " + "-".join(str(w) for w in config.hidden)
    parts = [arch, f"lr {sig3(config.lr)}", f"{config.epochs} ep"]
    if config.train_subset:
        parts.append(images(config.train_subset))
    if config.dataset != DEFAULT.dataset:
        parts.insert(0, config.dataset)
    extras = {
        "optimizer": config.optimizer,
        "batch_size": f"batch {config.batch_size}",
        "dropout": f"dropout {sig3(config.dropout)}",
        "batch_norm": "batch norm",
        "augment": "augmented",
        "activation": config.activation,
        "weight_decay": f"wd {sig3(config.weight_decay)}",
        "schedule": config.schedule,
        "label_smoothing": f"smoothing {sig3(config.label_smoothing)}",
        "seed": f"seed {config.seed}",
        "init_from": f"{'fine-tuned' if config.personal else 'continued'} from {config.init_from[:8]}",
        "personal": "+ my drawings",
    }
    parts += [text for name, text in extras.items() if getattr(config, name) != getattr(DEFAULT, name)]
    return " · ".join(parts)


def differing(rows: Iterable[dict], columns: list[str]) -> list[str]:
    """`columns` with those whose values differ between the rows first, each group in its given order."""
    rows = list(rows)
    differs = {c: len({repr(r.get(c)) for r in rows}) > 1 for c in columns}
    return [c for c in columns if differs[c]] + [c for c in columns if not differs[c]]
