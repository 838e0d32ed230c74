"""Data sets as in-memory uint8 tensors: the bundled MNIST first, torchvision's downloads when online, and
the versions of data sets people make (nnapp.engine.datasets finds them in the run stores' folders)."""

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

from nnapp.engine import datasets
from nnapp.engine.registry import UnknownName
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
    """The four arrays of one data set: uint8 images (N×size×size grey, N×3×size×size colour), int64 labels."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    test_share: float = 0.0  # above 0: the test arrays are empty and split() holds this share of train_x out, by class


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
    """Load a whole data set into memory once per process (a version of one of yours never changes)."""
    try:
        spec = datasets.spec(name)
    except UnknownName as err:
        raise DataError(f"{str(err)[:1].upper()}{str(err)[1:]}.") from None
    kind, _, where = spec.source.partition(":")
    loaders = {"bundled": lambda: _load_idx(ROOT / where), "torchvision": lambda: _load_torchvision(where)}
    images = _load_own(name, spec.test_share) if spec.own else loaders[kind]()
    shape = spec.input_shape if spec.channels > 1 else spec.input_shape[1:]
    if tuple(images.train_x.shape[1:]) != shape:
        raise DataError(f"{spec.title} holds {tuple(images.train_x.shape[1:])} images, not {'×'.join(map(str, shape))}.")
    return images


def _load_own(ref: str, test_share: float) -> Images:
    """A version of a data set of yours: its images and labels, one array each (nnapp.store writes them)."""
    path = datasets.arrays_path(ref)
    if path is None:
        raise DataError(f"The images of data set {ref} are not in this run store (a run imported without them, or deleted).")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            x, y = arrays["images"], arrays["labels"]
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"The images of data set {ref} cannot be read ({type(err).__name__}): {path.name} is damaged.") from None
    if x.dtype != np.uint8 or y.ndim != 1 or len(x) != len(y):
        raise DataError(f"The images of data set {ref} are damaged: {path.name} does not hold one label per image.")
    images = torch.from_numpy(np.require(x, requirements="W"))
    no_test = torch.zeros((0, *x.shape[1:]), dtype=torch.uint8), torch.zeros(0, dtype=torch.long)
    return Images(images, torch.from_numpy(y.astype(np.int64)), *no_test, test_share=test_share)


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
        train_x=_channels_first(train.data),
        train_y=torch.as_tensor(train.targets).long(),
        test_x=_channels_first(test.data),
        test_y=torch.as_tensor(test.targets).long(),
    )


def _channels_first(data) -> torch.Tensor:
    """torchvision's images as uint8 tensors: grey N×H×W as they come, colour (numpy N×H×W×3) as N×3×H×W."""
    x = torch.as_tensor(data).to(torch.uint8)
    return x.permute(0, 3, 1, 2).contiguous() if x.dim() == 4 else x


def split(images: Images, val_fraction: float, seed: int, subset: int = 0) -> Split:
    """Deterministic train/validation split from the seed; `subset` keeps only that many training images.
    A data set without a test set of its own (images.test_share) is split three ways, by class (stratified)."""
    if images.test_share:
        return _stratified(images, val_fraction, seed, subset)
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


def stratified_order(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A shuffled order of the images in which every prefix holds each class in its share of the whole: each
    image is ranked by its position within its class (shuffled), as a fraction of the class."""
    order = torch.randperm(len(labels), generator=generator)
    shuffled = labels[order]
    rank = torch.zeros(len(labels), dtype=torch.float64)
    for c in torch.unique(shuffled).tolist():
        where = torch.nonzero(shuffled == c).flatten()
        rank[where] = (torch.arange(len(where), dtype=torch.float64) + 0.5) / len(where)
    return order[torch.sort(rank, stable=True).indices]


def _stratified(images: Images, val_fraction: float, seed: int, subset: int) -> Split:
    """Test, validation and training images by class, fixed by the seed: the test share of every class first,
    then of what is left the validation share, the rest (or `subset` of it) for training."""
    x, y = images.train_x, images.train_y
    generator = torch.Generator().manual_seed(seed)
    order = stratified_order(y, generator)
    n_test = datasets.test_count(len(order))
    test_idx, rest = order[:n_test], order[n_test:]
    rest = rest[stratified_order(y.index_select(0, rest), generator)][: subset or None]  # any prefix is stratified
    n_val = max(1, round(len(rest) * val_fraction))
    val_idx, train_idx = rest[:n_val], rest[n_val:]
    pick = lambda idx: (x.index_select(0, idx), y.index_select(0, idx))  # noqa: E731
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = pick(train_idx), pick(val_idx), pick(test_idx)
    return Split(train_x, train_y, val_x, val_y, test_x, test_y)


def test_set(dataset: str, val_fraction: float, seed: int, subset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The test images and labels a run with these settings is scored on: the data set's own test set, or the
    share its split holds out (a data set of yours)."""
    images = load(dataset)
    if not images.test_share:
        return images.test_x, images.test_y
    data = split(images, val_fraction, seed, subset)
    return data.test_x, data.test_y


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
