"""Evaluation: logits in large batches, loss and accuracy, the confusion matrix and per-class scores."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnapp.engine.config import RunConfig
from nnapp.engine.device import autocast
from nnapp.engine.limits import CPU_EVAL_BATCH, EVAL_BATCH
from nnapp.engine.registry import LOSSES


def to_pixels(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 N×28×28 -> float N×1×28×28 in [0, 1] on `device`."""
    return x.to(device).unsqueeze(1).float().div_(255)


def eval_batch(device: torch.device) -> int:
    """Images per evaluation batch: cache-sized on a CPU, large on a GPU."""
    return CPU_EVAL_BATCH if device.type == "cpu" else EVAL_BATCH


@torch.inference_mode()
def predict_logits(model: nn.Module, x: torch.Tensor, device: torch.device, bf16: bool = False) -> torch.Tensor:
    """Logits (float32, CPU) for uint8 images, in large batches."""
    model.eval()
    out, batch = [], eval_batch(device)
    forward = model
    if device.type == "cpu" and not bf16 and (span := onednn_span(model)) is not None:
        forward = lambda xb: onednn_forward(model, span, xb)  # noqa: E731
    for start in range(0, len(x), batch):
        xb = to_pixels(x[start : start + batch], device)
        with autocast(device, bf16):
            out.append(forward(xb).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, 10)


# Layers a CPU evaluation runs on oneDNN's own tensors (torch's "mkldnn" layout), each as its eval-mode function.
# In that layout a convolution's output stays in oneDNN's blocked format for the pooling, batch norm and
# activation after it, where torch's kernels convert and, for max-pooling, also work out indices nobody reads:
# the fast preset's 10,000 test images took 0.31 s instead of 0.45 s, the default's 0.77 s instead of 0.86 s
# (medians of 8, interleaved), the same logits to float rounding (tested). Leaky ReLU has no such kernel.
ONEDNN_LAYERS = {
    nn.Conv2d: lambda layer, h: torch.mkldnn_convolution(
        h, layer.weight, layer.bias, _padding(layer), layer.stride, layer.dilation, layer.groups
    ),
    nn.MaxPool2d: lambda layer, h: F.max_pool2d(
        h, layer.kernel_size, layer.stride, layer.padding, layer.dilation, layer.ceil_mode
    ),
    nn.BatchNorm2d: lambda layer, h: torch.batch_norm(
        h, layer.weight, layer.bias, layer.running_mean, layer.running_var, False, 0.0, layer.eps, False
    ),
    nn.ReLU: lambda layer, h: torch.relu(h),
    nn.GELU: lambda layer, h: F.gelu(h, approximate=layer.approximate),
    nn.Tanh: lambda layer, h: torch.tanh(h),
    nn.Sigmoid: lambda layer, h: torch.sigmoid(h),
    nn.Dropout: lambda layer, h: h,  # eval mode: nothing
}


def _padding(conv: nn.Conv2d) -> tuple[int, ...]:
    if conv.padding != "same":
        return conv.padding
    return tuple(d * (k - 1) // 2 for k, d in zip(conv.kernel_size, conv.dilation, strict=True))  # "same": odd kernels


def onednn_span(model: nn.Module) -> tuple[int, int] | None:
    """The layers [start, end) of a network that a CPU evaluation runs in oneDNN's layout: from its first
    convolution on, as long as each layer is one ONEDNN_LAYERS runs; None where there is no such span."""
    if not isinstance(model, nn.Sequential) or not torch.backends.mkldnn.is_available():
        return None
    layers = list(model)
    start = next((i for i, layer in enumerate(layers) if isinstance(layer, nn.Conv2d)), None)
    if start is None:
        return None
    end = start
    while end < len(layers) and _runs_on_onednn(layers[end]):
        end += 1
    return (start, end) if end > start else None


def _runs_on_onednn(layer: nn.Module) -> bool:
    """Whether ONEDNN_LAYERS runs this layer as torch would; anything unusual stays on torch's own kernels."""
    if type(layer) not in ONEDNN_LAYERS:
        return False
    if isinstance(layer, nn.Conv2d):
        same_odd = layer.padding == "same" and all(k % 2 for k in layer.kernel_size)
        return layer.padding_mode == "zeros" and (same_odd or not isinstance(layer.padding, str))
    if isinstance(layer, nn.BatchNorm2d):
        return layer.running_mean is not None and layer.affine
    if isinstance(layer, nn.MaxPool2d):
        return layer.dilation in (1, (1, 1)) and not layer.return_indices
    return not isinstance(layer, nn.GELU) or layer.approximate == "none"


def onednn_forward(model: nn.Sequential, span: tuple[int, int], x: torch.Tensor) -> torch.Tensor:
    """The model's eval-mode output with the layers of `span` run on oneDNN tensors (see onednn_span)."""
    start, end = span
    h = model[:start](x).to_mkldnn()
    for layer in model[start:end]:
        h = ONEDNN_LAYERS[type(layer)](layer, h)
    return model[end:](h.to_dense())


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
    return {"accuracy": result["accuracy"], "loss": result["loss"], "pred": result["pred"].numpy(), **report(y, result["pred"])}
