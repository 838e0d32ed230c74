"""Data sets as in-memory uint8 tensors: the bundled MNIST first, torchvision's downloads when online."""

from __future__ import annotations

import functools
import gzip
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nnapp.engine.registry import DATASETS
from nnapp.system.errors import DataError
from nnapp.system.files import check_regular, read_regular

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "data" / "mnist"
MAX_IDX = 256 << 20  # bytes of one IDX file, packed or not: 60,000 images of 28×28 are 47 MB
IDX_FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}


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


def cache_dir() -> Path:
    """Where downloaded data sets go: NNAPP_DATA, else the user's cache directory."""
    if os.environ.get("NNAPP_DATA"):
        return Path(os.environ["NNAPP_DATA"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nnapp" / "data"


def read_idx(path: Path) -> np.ndarray:
    """Read one gzipped IDX file (the MNIST format) into a numpy array."""
    try:
        packed = read_regular(path, MAX_IDX)
        with gzip.GzipFile(fileobj=io.BytesIO(packed)) as f:
            raw = f.read(MAX_IDX + 1)
    except (OSError, EOFError) as err:  # not gzip, truncated, a folder or a device in its place
        raise DataError(f"{path.name} cannot be read: {err}") from None
    if len(raw) > MAX_IDX:
        raise DataError(f"{path.name} unpacks to more than {MAX_IDX >> 20} MiB: not an IDX file of 28×28 images.")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path.name} is not an unsigned-byte IDX file.")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(raw) - offset != count:
        raise DataError(f"{path.name} is truncated: expected {count} bytes of data, found {len(raw) - offset}.")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def read_idx_cached(path: Path) -> np.ndarray:
    """read_idx, kept decoded under cache_dir() so later processes skip the gunzip (a few tenths of a
    second of every training's start-up). The cache file is named after the source's size and mtime; a
    cache that cannot be written or read is simply not used."""
    stat = path.stat()
    cached = cache_dir() / "decoded" / f"{path.name.removesuffix('.gz')}-{stat.st_size}-{stat.st_mtime_ns}.npy"
    try:
        check_regular(cached, MAX_IDX)  # a FIFO or a device in its place is not waited on
        return np.load(cached)
    except (OSError, ValueError):
        pass
    array = read_idx(path)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, array)
        os.replace(tmp, cached)
    except OSError:
        pass
    return array


@functools.lru_cache(maxsize=4)
def load(name: str = "mnist") -> Images:
    """Load a whole data set into memory once per process."""
    if name not in DATASETS:
        raise DataError(f"Unknown data set {name!r}; choose from {', '.join(DATASETS)}.")
    spec = DATASETS[name]
    kind, _, where = spec.source.partition(":")
    images = _load_idx(ROOT / where) if kind == "bundled" else _load_torchvision(where)
    if tuple(images.train_x.shape[1:]) != (spec.image_size, spec.image_size):
        raise DataError(f"{spec.title} holds {tuple(images.train_x.shape[1:])} images, not {spec.image_size}×{spec.image_size}.")
    return images


def _load_idx(folder: Path) -> Images:
    """The four gzipped IDX files of a data set in MNIST's format."""
    arrays = {}
    for part, filename in IDX_FILES.items():
        path = folder / filename
        if not path.exists():
            raise DataError(f"The bundled data file {path} is missing; restore it from the repository.")
        arrays[part] = torch.from_numpy(np.require(read_idx_cached(path), requirements="W"))
    return Images(
        train_x=arrays["train_x"],
        train_y=arrays["train_y"].long(),
        test_x=arrays["test_x"],
        test_y=arrays["test_y"].long(),
    )


def _load_torchvision(class_name: str) -> Images:
    from torchvision import datasets

    cls = getattr(datasets, class_name)
    root = cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
        train = cls(root=str(root), train=True, download=True)
        test = cls(root=str(root), train=False, download=True)
    except Exception as err:  # torchvision raises URLError, RuntimeError or OSError when offline
        raise DataError(
            f"{class_name} could not be downloaded (this machine looks offline: {type(err).__name__}); "
            f"connect to the internet once, or put its files in {root}."
        ) from err
    return Images(
        train_x=train.data.to(torch.uint8),
        train_y=torch.as_tensor(train.targets).long(),
        test_x=test.data.to(torch.uint8),
        test_y=torch.as_tensor(test.targets).long(),
    )


def split(images: Images, val_fraction: float, seed: int, subset: int = 0) -> Split:
    """Deterministic train/validation split from the seed; `subset` keeps only that many training images."""
    n = len(images.train_x)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    if subset:
        order = order[:subset]
    n_val = max(1, round(len(order) * val_fraction))
    val_idx, train_idx = order[:n_val], order[n_val:]
    # index_select: the same rows as x[idx], in half the time (a launch waits for it)
    return Split(
        train_x=images.train_x.index_select(0, train_idx),
        train_y=images.train_y.index_select(0, train_idx),
        val_x=images.train_x.index_select(0, val_idx),
        val_y=images.train_y.index_select(0, val_idx),
        test_x=images.test_x,
        test_y=images.test_y,
    )


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
