"""Weights files of the run store: safetensors, written atomically, named by content, checked on load."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from nnapp.config import RunConfig
from nnapp.errors import StoreError

if TYPE_CHECKING:
    import torch

    from nnapp.records import Run


class WeightFiles:
    """The weights part of Store: `self.home` and `self.get(key)` come from it."""

    home: Path
    get: Callable[[str], Run | None]

    def weights_path(self, key: str) -> Path:
        run = self.get(key)
        name = run.weights_file if run is not None and run.weights_file else f"{key}.safetensors"
        return self.home / "weights" / name

    def write_weights(self, key: str, state_dict: dict[str, torch.Tensor]) -> tuple[str, str]:
        """Write a run's weights; returns (sha256, file name). The name carries the checksum, so a retrain
        never overwrites the file the finished run still points at."""
        from safetensors.torch import save as save_safetensors  # torch: the CLI's list and show start without it

        blob = save_safetensors({k: v.contiguous() for k, v in state_dict.items()}, metadata={"key": key})
        sha = hashlib.sha256(blob).hexdigest()
        name = f"{key}-{sha[:16]}.safetensors"
        atomic_write(self.home / "weights" / name, blob)
        return sha, name

    def load_weights(self, key: str) -> dict[str, torch.Tensor]:
        """The stored weights, checked against the database's checksum before anything is parsed."""
        run = self.get(key)
        if run is None:
            raise StoreError(f"no run {key}")
        if not run.has_weights():
            raise StoreError(f"run {key} has no weights (status {run.status})")
        path = self.weights_path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"the weights of run {key} are missing ({path})") from None
        if hashlib.sha256(blob).hexdigest() != run.weights_sha256:
            raise StoreError(f"the weights of run {key} are corrupted: {path.name} fails its checksum")
        from safetensors.torch import load as load_safetensors  # torch: the CLI's list and show start without it

        return load_safetensors(blob)

    def load_model(self, key: str) -> tuple[torch.nn.Module, RunConfig]:
        """Rebuild the model from the stored config and load its weights (eval mode, CPU)."""
        from nnapp.models import build_model

        run = self.get(key)
        if run is None:
            raise StoreError(f"no run {key}")
        model = build_model(run.config)
        model.load_state_dict(self.load_weights(key))
        return model.eval(), run.config


def atomic_write(path: Path, blob: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
