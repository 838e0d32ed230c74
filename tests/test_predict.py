import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter, ImageOps
from torch import nn

from nnapp.engine.data import load
from nnapp.engine.models import build_model
from nnapp.engine.presets import PRESETS
from nnapp.predict.images import ImageError, dilate, load_image, preprocess
from nnapp.predict.inference import for_inference, predict, probabilities, saliency
from tests.digits import render

YS, XS = np.mgrid[0:28, 0:28]


def centre_of_mass(digit):
    m = digit.sum()
    return (digit * YS).sum() / m, (digit * XS).sum() / m


def long_side(digit, threshold=0.1):
    rows = np.flatnonzero((digit > threshold).any(1))
    cols = np.flatnonzero((digit > threshold).any(0))
    return max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)


DRAWINGS = {
    "small in a corner": dict(box=(8, 10, 40, 60), width=6),
    "large": dict(box=(20, 5, 230, 270), width=30),
    "thick": dict(box=(70, 50, 120, 170), width=34),
    "thin": dict(box=(60, 40, 150, 200), width=2),
    "black on white": dict(fg=(0, 0, 0, 255), bg=(255, 255, 255, 255)),
    "white on black": dict(fg=(255, 255, 255, 255), bg=(0, 0, 0, 255)),
    "blue on transparent": dict(fg=(30, 60, 200, 255), bg=(0, 0, 0, 0)),
    "grey on yellow": dict(fg=(90, 90, 90, 255), bg=(250, 230, 120, 255)),
}


@pytest.mark.parametrize("digit", [1, 3, 7, 8])
@pytest.mark.parametrize("name", list(DRAWINGS))
def test_preprocessing_centres_and_fits_like_mnist(name, digit):
    stages = preprocess(render(digit, **DRAWINGS[name]))
    d = stages.digit
    assert d.shape == (28, 28) and d.dtype == np.float32
    assert 0 <= d.min() and d.max() <= 1 and d.max() > 0.9
    cy, cx = centre_of_mass(d)
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1, (cy, cx)
    assert 19 <= long_side(d) <= 21
    # grey edges, as MNIST's anti-aliasing leaves them
    assert ((d > 0.05) & (d < 0.95)).sum() > 5


def test_thin_and_thick_strokes_come_out_alike():
    thin = preprocess(render(7, width=2)).digit
    thick = preprocess(render(7, width=26)).digit
    assert abs(thin.sum() - thick.sum()) / thick.sum() < 0.5


def test_empty_and_blank_images():
    assert preprocess(np.zeros((280, 280, 4), np.uint8)) is None
    assert preprocess(np.full((280, 280, 4), 255, np.uint8)) is None
    assert preprocess(np.full((50, 50), 128, np.uint8)) is None


def test_upload_decoding():
    buf = io.BytesIO()
    Image.fromarray(render(4)).save(buf, format="PNG")
    assert load_image(buf.getvalue()).shape == (280, 280, 4)
    jpg = io.BytesIO()
    Image.fromarray(render(4)).convert("RGB").save(jpg, format="JPEG")
    assert preprocess(load_image(jpg.getvalue())) is not None
    for junk in (b"", b"not an image at all", b"\x89PNG\r\n\x1a\n broken"):
        with pytest.raises(ImageError):
            load_image(junk)
    gif = io.BytesIO()
    Image.new("L", (10, 10)).save(gif, format="GIF")
    with pytest.raises(ImageError, match="PNG or JPEG"):
        load_image(gif.getvalue())


@pytest.fixture(scope="module")
def mnist_model(fast_run):
    store, run = fast_run
    return for_inference(store.load_model(run.key)[0])


PLACES = [
    dict(box=(60, 40, 160, 200), width=18),  # centred, medium
    dict(box=(10, 10, 70, 90), width=8),  # small, top left
    dict(box=(150, 120, 110, 150), width=14),  # bottom right
    dict(box=(20, 10, 240, 260), width=28),  # large
]


def test_model_reads_synthetic_drawings_of_every_digit(mnist_model):
    results = {}
    for digit in range(10):
        for i, place in enumerate(PLACES):
            _, probs = predict(mnist_model, render(digit, **place))
            results[(digit, i)] = int(np.argmax(probs))
    wrong = {k: v for k, v in results.items() if v != k[0]}
    assert len(wrong) <= 3, f"misread (digit, place) -> read: {wrong}"
    assert all(sum(results[(d, i)] == d for i in range(len(PLACES))) >= 3 for d in range(10)), wrong


@pytest.mark.parametrize("radius", [1, 2, 4])
def test_dilate_is_repeated_3x3_max_filtering(radius):
    rng = np.random.default_rng(radius)
    ink = (rng.random((23, 31)) < 0.05).astype(np.uint8) * rng.integers(1, 256, (23, 31), dtype=np.uint8)
    expected = ImageOps.expand(Image.fromarray(ink), border=radius, fill=0)
    for _ in range(radius):
        expected = expected.filter(ImageFilter.MaxFilter(3))
    assert np.array_equal(dilate(ink, radius), np.asarray(expected))


@pytest.mark.parametrize("name", list(PRESETS))
def test_inference_form_computes_the_same_function(name):
    images = load("mnist").test_x[:32].unsqueeze(1).float() / 255
    config = PRESETS[name]
    for variant in (config, config.replace(activation="gelu", batch_norm=not config.batch_norm)):
        torch.manual_seed(0)
        model = build_model(variant)
        with torch.no_grad():  # batch-norm statistics as training leaves them, not a fresh layer's identity
            for m in model.modules():
                if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                    m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2)
                    m.weight.uniform_(-1.5, 1.5), m.bias.uniform_(-1, 1)
            expected = model.eval()(images)
            fast = for_inference(model)
            assert torch.allclose(fast(images), expected, atol=1e-5)
        one = probabilities(fast, images[3, 0].numpy())
        assert np.allclose(one, expected[3].softmax(0).numpy(), atol=1e-6)
        as_uint8 = probabilities(fast, (images[3, 0] * 255).round().to(torch.uint8).numpy())
        assert np.allclose(as_uint8, one, atol=1e-5)


def test_saliency_lights_up_the_ink(mnist_model):
    digit = preprocess(render(4)).digit
    heat = saliency(mnist_model, digit)
    assert heat.shape == (28, 28) and heat.min() >= 0 and heat.max() == pytest.approx(1)
    assert heat[digit > 0.5].mean() > 3 * heat[digit == 0].mean()


def test_inference_form_leaves_its_source_untouched():
    torch.manual_seed(0)
    model = build_model(PRESETS["default"]).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.weight.is_contiguous() for c in convs)
    fast = for_inference(model)
    assert model.training, "the source was switched to eval mode"
    assert all(c.weight.is_contiguous() for c in convs), "the source's convolutions were converted to channels_last"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    x = load("mnist").test_x[:4].unsqueeze(1).float() / 255
    expected = fast(x)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    assert torch.equal(fast(x), expected), "a change to the source reached the inference form"
