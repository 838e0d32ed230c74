"""Weights files of the run store: safetensors, written atomically, named by content, checked on load."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from nnapp.engine.config import RunConfig
from nnapp.engine.fields import RUN_KEY
from nnapp.engine.records import base_key
from nnapp.system.errors import StoreError
from nnapp.system.files import UnreadableFile, atomic_write, os_error_text, read_regular, shared_lock

if TYPE_CHECKING:
    import torch

    from nnapp.engine.records import Run

MAX_WEIGHTS = 1 << 30  # bytes: 100M float parameters (the most a network may have) and room to spare
WEIGHTS_LOCK = "weights.lock"  # beside weights/: held shared from a weights file's write to its row's
ORPHAN = re.compile(r"[0-9a-f]{16}(-[0-9a-f]{16})?\.safetensors")  # the names nnapp gives weights files


class RunDeleted(StoreError):
    """The run's row was deleted while it trained: nothing of the training is kept."""

    def __init__(self, key: str):
        super().__init__(f"run {base_key(key)} was deleted while it trained; nothing of that training was kept")


class WeightFiles:
    """The weights part of Store: `self.home` and `self.get(key)` come from it."""

    home: Path
    get: Callable[[str], Run | None]

    def weights_path(self, key: str) -> Path:
        if not RUN_KEY.fullmatch(key):
            raise StoreError(f"{key[:40]!r} is not a run key")
        run = self.get(key)
        name = run.weights_file if run is not None and run.weights_file else f"{key}.safetensors"
        return self.home / "weights" / name

    def writing_weights(self) -> AbstractContextManager:
        """Hold this around writing a weights file and the row that points at it: the store's next opener
        leaves the weights folder alone meanwhile (remove_orphans), and a kill -9 lets go at once."""
        return shared_lock(self.home / WEIGHTS_LOCK)

    def write_weights(self, key: str, blob_or_state: bytes | dict[str, torch.Tensor]) -> tuple[str, str]:
        """Write a run's weights (safetensors bytes, or a state dict); returns (sha256, file name). The name
        carries the checksum, so a retrain never overwrites the file the finished run still points at."""
        blob = blob_or_state if isinstance(blob_or_state, bytes) else _serialise(key, blob_or_state)
        sha = hashlib.sha256(blob).hexdigest()
        name = f"{base_key(key)}-{sha[:16]}.safetensors"
        try:
            atomic_write(self.home / "weights" / name, blob)
        except OSError as err:  # a full disk, a folder made read-only since the store opened: one sentence
            raise StoreError(f"cannot write the weights of run {base_key(key)}: {os_error_text(err)}") from None
        return sha, name

    def weights_blob(self, key: str) -> bytes:
        """The stored weights file, read whole (a regular file of bounded size) and checked against the
        database's checksum; StoreError says what is wrong."""
        run = self.get(key)
        if run is None:
            raise StoreError(f"no run {key}")
        if not run.has_weights():
            raise StoreError(f"run {key} has no weights (status {run.status})")
        path = self.weights_path(key)
        try:
            blob = read_regular(path, MAX_WEIGHTS)
        except FileNotFoundError:
            raise StoreError(f"the weights of run {key} are missing ({path})") from None
        except UnreadableFile as err:
            raise StoreError(f"the weights of run {key} cannot be read: {err}") from None
        except OSError as err:
            raise StoreError(f"the weights of run {key} cannot be read: {os_error_text(err, path)}") from None
        if hashlib.sha256(blob).hexdigest() != run.weights_sha256:
            raise StoreError(f"the weights of run {key} are corrupted: {path.name} fails its checksum")
        return blob

    def load_weights(self, key: str) -> dict[str, torch.Tensor]:
        """The stored weights, checked against the database's checksum before anything is parsed."""
        blob = self.weights_blob(key)
        from safetensors.torch import load as load_safetensors  # torch: the CLI's list and show start without it

        try:
            return load_safetensors(blob)
        except Exception as err:  # safetensors raises its own error type for a damaged header
            name = self.weights_path(key).name
            raise StoreError(f"the weights of run {key} cannot be read: {name} is not a safetensors file") from err

    def load_model(self, key: str) -> tuple[torch.nn.Module, RunConfig]:
        """Rebuild the model from the stored config and load its weights (eval mode, CPU)."""
        from nnapp.engine.models import build_model

        state = self.load_weights(key)  # first: it checks the run has weights and a readable config
        run = self.get(key)
        model = build_model(run.config)
        try:
            model.load_state_dict(state)
        except RuntimeError:
            raise StoreError(f"the weights of run {key} do not fit the network its config describes") from None
        return model.eval(), run.config


def safetensors_header(blob: bytes) -> dict | None:
    """The JSON header of safetensors bytes (tensor names -> dtype, shape, offsets; "__metadata__"), or None
    when the bytes are not safetensors; nothing is loaded."""
    import json
    import struct

    if len(blob) < 8:
        return None
    (size,) = struct.unpack("<Q", blob[:8])
    try:
        header = json.loads(blob[8 : 8 + size].decode("utf-8")) if 8 + size <= len(blob) else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return header if isinstance(header, dict) else None


def _serialise(key: str, state_dict: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save as save_safetensors  # torch: the CLI's list and show start without it

    return save_safetensors({k: v.contiguous() for k, v in state_dict.items()}, metadata={"key": base_key(key)})
