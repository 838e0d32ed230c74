"""Loss functions named in the registry: fn(logits, labels, label_smoothing) -> scalar loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    return F.cross_entropy(logits, labels, label_smoothing=smoothing)


def mse(logits: torch.Tensor, labels: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    """Squared error of the softmax probabilities against one-hot targets."""
    return F.mse_loss(logits.softmax(1), F.one_hot(labels, logits.shape[1]).to(logits.dtype))
