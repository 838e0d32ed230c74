"""Evaluation: logits in large batches, loss and accuracy, the confusion matrix and per-class scores."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nnapp.engine.config import RunConfig
from nnapp.engine.device import autocast
from nnapp.engine.limits import CPU_EVAL_BATCH, EVAL_BATCH
from nnapp.engine.registry import LOSSES


def to_pixels(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 N×H×W (grey) or N×C×H×W -> float N×C×H×W in [0, 1] on `device`."""
    x = x.to(device)
    return (x.unsqueeze(1) if x.dim() == 3 else x).float().div_(255)


def eval_batch(device: torch.device) -> int:
    """Images per evaluation batch: cache-sized on a CPU, large on a GPU."""
    return CPU_EVAL_BATCH if device.type == "cpu" else EVAL_BATCH


@torch.inference_mode()
def predict_logits(model: nn.Module, x: torch.Tensor, device: torch.device, bf16: bool = False) -> torch.Tensor:
    """Logits (float32, CPU) for uint8 images, in large batches."""
    model.eval()
    out, batch = [], eval_batch(device)
    for start in range(0, len(x), batch):
        xb = to_pixels(x[start : start + batch], device)
        with autocast(device, bf16):
            out.append(model(xb).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, 10)


def evaluate(
    config: RunConfig, model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, bf16: bool = False
) -> dict:
    """Loss (the config's, without label smoothing), accuracy, and each image's prediction and its probability."""
    logits = predict_logits(model, x, device, bf16)
    loss = LOSSES[config.loss](logits, y).item() if len(y) else float("nan")
    prob, pred = logits.softmax(1).max(1)
    accuracy = (pred == y).float().mean().item() if len(y) else float("nan")
    return {"loss": loss, "accuracy": accuracy, "pred": pred, "prob": prob}


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


def evaluate_on(model: nn.Module, config: RunConfig, images: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, loss and confusion matrix of a model on a small labelled set (e.g. personal drawings)."""
    x, y = torch.from_numpy(np.asarray(images, np.uint8)), torch.from_numpy(np.asarray(labels, np.int64))
    result = evaluate(config, model, x, y, torch.device("cpu"))
    classes = len(config.data_spec().classes)
    return {
        "accuracy": result["accuracy"],
        "loss": result["loss"],
        "pred": result["pred"].numpy(),
        **report(y, result["pred"], classes),
    }
