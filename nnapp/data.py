"""Data sets as in-memory uint8 tensors: the bundled MNIST first, torchvision's downloads when online."""

from __future__ import annotations

import functools
import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

BUNDLED = Path(__file__).resolve().parent.parent / "data" / "mnist"
MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}
DOWNLOADABLE = {"fashion_mnist": "FashionMNIST", "kmnist": "KMNIST"}
CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "fashion_mnist": ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"],
    "kmnist": ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
}
# Identities are fixed strings per data set: a data set's files are versioned by torchvision or
# by this repository, and hashing 60 MB at every key() would make cache hits slow.
IDENTITIES = {"mnist": "mnist-idx-lecun-70000", "fashion_mnist": "fashion-mnist-70000", "kmnist": "kmnist-70000"}


class DataError(RuntimeError):
    """A data set that cannot be loaded; the message is one sentence for the user."""


@dataclass(frozen=True)
class Images:
    """The four arrays of one data set, uint8 images N×28×28 and int64 labels."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


@dataclass(frozen=True)
class Split:
    """Train/validation/test tensors for one run, uint8 images, on the CPU."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def identity(name: str) -> str:
    return IDENTITIES.get(name, name)


def cache_dir() -> Path:
    """Where downloaded data sets go: NNAPP_DATA, else the user's cache directory."""
    if os.environ.get("NNAPP_DATA"):
        return Path(os.environ["NNAPP_DATA"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nnapp" / "data"


def read_idx(path: Path) -> np.ndarray:
    """Read one gzipped IDX file (the MNIST format) into a numpy array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path.name} is not an unsigned-byte IDX file.")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(raw) - offset != count:
        raise DataError(f"{path.name} is truncated: expected {count} bytes of data, found {len(raw) - offset}.")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


@functools.lru_cache(maxsize=4)
def load(name: str = "mnist") -> Images:
    """Load a whole data set into memory once per process."""
    if name == "mnist":
        arrays = {}
        for part, filename in MNIST_FILES.items():
            path = BUNDLED / filename
            if not path.exists():
                raise DataError(f"The bundled MNIST file {path} is missing; restore it from the repository.")
            arrays[part] = torch.from_numpy(read_idx(path).copy())
        return Images(
            train_x=arrays["train_x"],
            train_y=arrays["train_y"].long(),
            test_x=arrays["test_x"],
            test_y=arrays["test_y"].long(),
        )
    if name in DOWNLOADABLE:
        return _load_torchvision(name)
    raise DataError(f"Unknown data set {name!r}; choose from mnist, {', '.join(DOWNLOADABLE)}.")


def _load_torchvision(name: str) -> Images:
    from torchvision import datasets

    cls = getattr(datasets, DOWNLOADABLE[name])
    root = cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
        train = cls(root=str(root), train=True, download=True)
        test = cls(root=str(root), train=False, download=True)
    except Exception as err:  # torchvision raises URLError, RuntimeError or OSError when offline
        raise DataError(
            f"{DOWNLOADABLE[name]} could not be downloaded (this machine looks offline: {type(err).__name__}); "
            f"connect to the internet once, or put its files in {root}."
        ) from err
    return Images(
        train_x=train.data.to(torch.uint8),
        train_y=train.targets.long(),
        test_x=test.data.to(torch.uint8),
        test_y=test.targets.long(),
    )


def split(images: Images, val_fraction: float, seed: int, subset: int = 0) -> Split:
    """Deterministic train/validation split from the seed; `subset` keeps only that many training images."""
    n = len(images.train_x)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    if subset:
        order = order[:subset]
    n_val = max(1, round(len(order) * val_fraction))
    val_idx, train_idx = order[:n_val], order[n_val:]
    return Split(
        train_x=images.train_x[train_idx],
        train_y=images.train_y[train_idx],
        val_x=images.train_x[val_idx],
        val_y=images.train_y[val_idx],
        test_x=images.test_x,
        test_y=images.test_y,
    )


# Normalisation constants of the MNIST training set; the model's first layer applies them, so a
# stored model carries its preprocessing and the canvas path cannot normalise differently.
MEAN = {"mnist": 0.1307, "fashion_mnist": 0.2860, "kmnist": 0.1918}
STD = {"mnist": 0.3081, "fashion_mnist": 0.3530, "kmnist": 0.3483}
