"""What training a config does, as the code that builds it reads the fields: two configs with the same
`trained` train the same network the same way, whatever their other fields say.

The network is its layers (nnapp.engine.arch.plan): conv and padding around an MLP build nothing. The
optimiser's momentum and the loss's label smoothing count only where their registry entries take them
(OptimizerSpec.momentum, LossSpec.smoothing) and no schedule sets them step by step. A sweep reads this to
refuse a searched field that changes nothing. No torch here.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from nnapp.engine.arch import plan
from nnapp.engine.config import RunConfig
from nnapp.engine.registry import LOSSES, OPTIMIZERS, SCHEDULES

NETWORK = ("model", "conv", "padding", "hidden", "activation", "dropout", "batch_norm")  # what plan() reads, with the data set


def unread(config: RunConfig) -> dict[str, str]:
    """Fields outside the network that training `config` never reads, each with why; `config` must be valid."""
    optimizer, loss, found = OPTIMIZERS[config.optimizer], LOSSES[config.loss], {}
    if not optimizer.momentum:
        found["momentum"] = f"the {config.optimizer} optimizer takes no momentum"
    else:
        schedule = SCHEDULES[config.schedule].make(config.lr, config.steps_per_epoch(), config.epochs, True)
        if schedule is not None and schedule(0)[1] is not None:
            found["momentum"] = f"the {config.schedule} schedule sets the momentum itself at every step"
    if not loss.smoothing:
        found["label_smoothing"] = f"the {config.loss} loss takes no label smoothing"
    return found


def trained(config: RunConfig) -> tuple[Any, ...]:
    """The network's layers and every other field training reads, as training reads them."""
    skipped = {*NETWORK, *unread(config)}
    return tuple(plan(config)), tuple((f.name, getattr(config, f.name)) for f in fields(config) if f.name not in skipped)


def why_alike(config: RunConfig, field: str) -> str:
    """Why values of `field` all train alike around `config`: a sentence's ending for the sweep's message."""
    return (
        unread(config).get(field)
        or f"every value builds the same network for this {config.model.upper()}, whose layers do not use it"
    )
