"""A trained network run on one image at a time: its input, a faster form of it, probabilities, saliency."""

from __future__ import annotations

import copy
import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnapp.predict.images import SIZE, Stages, preprocess


def to_input(digit: np.ndarray) -> torch.Tensor:
    """One image, float in [0, 1] or uint8, as the model's input batch of one: a grey H×W one (a 28×28 digit),
    or a colour H×W×3 one (as pictures are held for display) made channels-first."""
    x = torch.as_tensor(np.asarray(digit))
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
    if x.dim() == 3:
        return x.permute(2, 0, 1).unsqueeze(0).contiguous()
    return x.reshape(1, 1, *x.shape) if x.dim() == 2 else x.reshape(1, 1, SIZE, SIZE)


class Inference(nn.Module):
    """A trained network made ready for one digit at a time: the same function, fewer and cheaper steps.

    Eval-mode batch norm becomes a per-channel scale and shift (folded into the weights when it follows
    a linear layer), dropout is left out, convolutions run channels_last where that is faster, and the
    layers' forward functions are called directly, without nn.Module's per-call machinery (benchmarks/bench.py
    section 5 times it). The output matches the network's own to
    float rounding (tested). It works on a copy: the source network is left as it was, and later changes
    to its weights do not reach this one.
    """

    def __init__(self, model: nn.Sequential):
        super().__init__()
        # A copy: folding and memory-format changes must not touch the network it was made from.
        self.layers = nn.ModuleList(copy.deepcopy(list(model))).eval()
        self.steps = _fold(list(self.layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            x = step(x)
        return x


def _bn_affine(bn: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode batch norm as y = x·scale + shift, the way torch's own eval kernel works it out."""
    scale = torch.rsqrt(bn.running_var + bn.eps) * bn.weight
    return scale, bn.bias - bn.running_mean * scale


@torch.no_grad()
def _fold(layers: list[nn.Module]) -> list:
    steps = []
    i = 0
    while i < len(layers):
        layer, following = layers[i], layers[i + 1] if i + 1 < len(layers) else None
        i += 1
        if isinstance(layer, nn.Dropout):
            continue
        if isinstance(layer, nn.Linear) and isinstance(following, nn.BatchNorm1d):
            scale, shift = _bn_affine(following)
            weight = layer.weight * scale[:, None]
            bias = shift if layer.bias is None else layer.bias * scale + shift
            steps.append(functools.partial(F.linear, weight=weight, bias=bias))
            i += 1
        elif isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            scale, shift = _bn_affine(layer)
            if isinstance(layer, nn.BatchNorm2d):
                scale, shift = scale.view(1, -1, 1, 1), shift.view(1, -1, 1, 1)
            steps.append(functools.partial(_affine, scale=scale, shift=shift))
        elif isinstance(layer, nn.Conv2d) and layer.in_channels == 1:
            # For one digit on a CPU, a channels_last convolution is three times slower on a one-channel
            # input, but max-pooling is ten times faster on a channels_last result: convolve, then convert.
            steps.append(functools.partial(_conv_to_channels_last, layer))
        else:
            if isinstance(layer, nn.Conv2d):
                layer.to(memory_format=torch.channels_last)
            steps.append(layer.forward)
    return steps


def _conv_to_channels_last(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    return conv.forward(x).contiguous(memory_format=torch.channels_last)


def _affine(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    return torch.addcmul(shift, x, scale)


def for_inference(model: nn.Sequential) -> Inference:
    """The network, in eval mode, as a fast predictor of single digits (see Inference)."""
    return Inference(model)


@torch.inference_mode()
def probabilities(model: nn.Module, digit: np.ndarray) -> np.ndarray:
    """Class probabilities for one 28×28 digit."""
    return model(to_input(digit)).softmax(1)[0].numpy()


def saliency(model: nn.Module, digit: np.ndarray, target: int | None = None) -> np.ndarray:
    """|gradient × input| of the target class's logit (default: the predicted one), scaled to [0, 1]; summed
    over a colour image's channels.

    Pixels that are ink and that move the score most light up.
    """
    x = to_input(digit).requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        cls = int(logits.argmax(1)) if target is None else target
        logits[0, cls].backward()
    heat = ((x.grad * x).abs() + 0.25 * x.grad.abs())[0].sum(0)  # background pixels that matter show faintly
    heat = heat.detach().numpy()
    return heat / heat.max() if heat.max() > 0 else heat


def predict(model: nn.Module, image: np.ndarray) -> tuple[Stages, np.ndarray] | None:
    """The canvas path: raw image -> stages and probabilities; None for an empty drawing."""
    stages = preprocess(image)
    if stages is None:
        return None
    return stages, probabilities(model, stages.digit)
