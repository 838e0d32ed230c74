"""Named configs: the seed's two networks as reference points, and tuned ones that beat them."""

from __future__ import annotations

from nnapp.engine.config import RunConfig

PRESETS: dict[str, RunConfig] = {
    # The seed's MLP: 784-64-64-10, Adam 1e-3, batch 64.
    "seed-mlp": RunConfig(model="mlp", hidden=(64, 64), optimizer="adam", lr=1e-3, schedule="constant", batch_size=64, epochs=5),
    # The seed's CNN with its flatten size worked out from the layers instead of hand-written (64×5×5, not 64×7×7).
    "seed-cnn": RunConfig(
        model="cnn",
        conv=((32, 3, 2), (64, 3, 2)),
        padding="valid",
        hidden=(128,),
        optimizer="adam",
        lr=1e-3,
        schedule="constant",
        batch_size=64,
        epochs=3,
    ),
    # The quickest to 99% on MNIST test: one epoch of a small batch-normed CNN with one-cycle LR and
    # label smoothing (benchmarks/bench.py section 3 times it).
    "fast": RunConfig(
        model="cnn",
        conv=((16, 3, 2), (32, 3, 2)),
        hidden=(128,),
        batch_norm=True,
        optimizer="adamw",
        lr=1e-2,
        schedule="onecycle",
        batch_size=128,
        epochs=1,
        label_smoothing=0.1,
    ),
    # The app's default: above 99.4% on MNIST test after 4 epochs (benchmarks/bench.py section 3).
    "default": RunConfig(
        model="cnn",
        conv=((32, 3, 2), (64, 3, 2)),
        hidden=(128,),
        batch_norm=True,
        dropout=0.1,
        optimizer="adamw",
        lr=5e-3,
        weight_decay=1e-2,
        schedule="onecycle",
        batch_size=128,
        epochs=4,
        label_smoothing=0.1,
    ),
    # The most accurate: four conv layers, augmentation, label smoothing (benchmarks/bench.py --best).
    "best": RunConfig(
        model="cnn",
        conv=((32, 3, 1), (32, 3, 2), (64, 3, 1), (64, 3, 2)),
        hidden=(256,),
        batch_norm=True,
        dropout=0.2,
        optimizer="adamw",
        lr=5e-3,
        weight_decay=5e-2,
        schedule="onecycle",
        batch_size=128,
        epochs=6,
        augment=True,
        label_smoothing=0.1,
    ),
    # For a data set of yours, tens to hundreds of examples a class: augmentation on, many short epochs with
    # early stopping, small batches (benchmarks/bench_owndata.py section 22 trains it on 3 drawn classes).
    "small-data": RunConfig(
        model="cnn",
        conv=((16, 3, 2), (32, 3, 2)),
        hidden=(64,),
        batch_norm=True,
        dropout=0.2,
        optimizer="adamw",
        lr=3e-3,
        weight_decay=1e-2,
        schedule="onecycle",
        batch_size=32,
        epochs=40,
        label_smoothing=0.1,
        patience=8,
        augment=True,
        val_fraction=0.15,
    ),
}
DEFAULT_PRESET = "default"
SMALL_DATA = "small-data"  # the preset a data set of yours starts from
SMALL_DATA_WHY = (
    "Small-data defaults (preset small-data): augmentation on, up to 40 epochs with early stopping after 8 "
    "without a better validation loss, batches of 32. A few hundred images need many passes, each a little "
    "different, and stopping when validation stops improving keeps the network from learning the examples by heart."
)


def small_data(dataset: str) -> RunConfig:
    """The small-data preset on `dataset`, its batch no larger than half its training images (a data set at
    its smallest, ten examples a class, still takes a few steps an epoch)."""
    config = PRESETS[SMALL_DATA].replace(dataset=dataset)
    half = max(config.train_images() // 2, 2)
    return config.replace(batch_size=min(config.batch_size, 1 << (half.bit_length() - 1)))


def preset(name: str) -> RunConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]
