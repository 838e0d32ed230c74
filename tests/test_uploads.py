"""Hostile uploads on the Playground: every decoder failure is one sentence, pixels are capped before decoding,
and each uploaded file is decoded once, not on every rerun."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import nnapp.predict.images
from nnapp.jobs.runs import train_or_load
from nnapp.predict.images import MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS, WORK_SIDE, ImageError, load_image, preprocess
from tests.digits import render
from ui import PAGES

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def encoded(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_with(*chunks: bytes, width: int = 10, height: int = 10) -> bytes:
    """A small white PNG with extra chunks before its pixels, claiming the given size."""
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    pixels = chunk(b"IDAT", zlib.compress(b"\x00" + b"\xff" * 10))
    return b"\x89PNG\r\n\x1a\n" + header + b"".join(chunks) + pixels + chunk(b"IEND", b"")


DIGIT = Image.fromarray(render(3))
GOOD = {
    "grey JPEG": encoded(DIGIT.convert("L"), "JPEG"),
    "CMYK JPEG": encoded(DIGIT.convert("CMYK"), "JPEG"),
    "progressive JPEG": encoded(DIGIT.convert("RGB"), "JPEG", progressive=True),
    "palette PNG": encoded(DIGIT.convert("P"), "PNG"),
    "grey and alpha PNG": encoded(DIGIT.convert("LA"), "PNG"),
    "1-bit PNG": encoded(DIGIT.convert("1"), "PNG"),
    "16-bit PNG": encoded(Image.fromarray(np.asarray(DIGIT.convert("L")).astype(np.uint16) * 257), "PNG"),
    "a 12-megapixel photo": encoded(DIGIT.convert("RGB").resize((4000, 3000)), "JPEG"),
    "damaged EXIF": encoded(DIGIT.convert("RGB"), "JPEG", exif=b"Exif\x00\x00MM\x00*\xff\xff\xff\xff"),
}
BAD = {
    "text chunks that decompress to 67 MB": (
        png_with(*[chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * 900_000, 9))] * 75),
        "not an image nnapp can read",
    ),
    "one iTXt chunk of 5 MB": (
        png_with(chunk(b"iTXt", b"Comment\x00\x01\x00\x00\x00" + zlib.compress(b"A" * 5_000_000, 9))),
        "not an image nnapp can read",
    ),
    "a header claiming 30000×30000": (
        png_with(width=30_000, height=30_000),
        "has 900,000,000 pixels; the limit is 24 megapixels",
    ),
    "a header claiming 100000×100000": (png_with(width=100_000, height=100_000), "the limit is 24 megapixels"),
    "a header claiming 6000×5000": (png_with(width=6000, height=5000), "the limit is 24 megapixels"),
    "a truncated PNG": (encoded(DIGIT, "PNG")[:2000], "not an image nnapp can read"),
    "a PNG with a bad checksum": (encoded(DIGIT, "PNG")[:29] + b"\x00\x00\x00\x00" + encoded(DIGIT, "PNG")[33:], "not an image"),
    "a GIF": (encoded(DIGIT.convert("P"), "GIF"), "That is a GIF file; upload a PNG or JPEG."),
    "a BMP": (encoded(DIGIT.convert("RGB"), "BMP"), "That is a BMP file"),
    "nothing": (b"", "not an image nnapp can read"),
    "text": (b"hello, I am a digit", "not an image nnapp can read"),
}


@pytest.mark.parametrize("name", GOOD)
def test_ordinary_images_decode_small(name):
    image = load_image(GOOD[name])
    assert image.dtype == np.uint8 and image.shape[2] == 4 and max(image.shape[:2]) <= WORK_SIDE
    assert preprocess(image) is not None


@pytest.mark.parametrize("name", BAD)
def test_hostile_images_are_one_sentence(name):
    data, says = BAD[name]
    with pytest.raises(ImageError) as err:
        load_image(data)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_cameras_multi_picture_jpeg_is_read_as_its_first_picture():
    """A phone's MPO (a JPEG with more pictures after the first) is the first picture, not "an MPO file"."""
    buf = io.BytesIO()
    DIGIT.convert("RGB").save(buf, "MPO", save_all=True, append_images=[Image.new("RGB", DIGIT.size, "white")])
    assert Image.open(io.BytesIO(buf.getvalue())).format == "MPO"
    image = load_image(buf.getvalue())
    assert np.abs(image[..., 0].astype(int) - np.asarray(DIGIT.convert("L"))).mean() < 8  # the digit, not the white one
    assert preprocess(image) is not None


def test_a_file_too_large_to_be_an_image_says_so():
    with pytest.raises(ImageError, match="an image may be at most 64 MiB"):
        load_image(encoded(DIGIT, "PNG") + bytes(MAX_UPLOAD_BYTES))


def test_a_long_thin_image_is_decoded_small():
    data = encoded(Image.new("L", (16_000_000, 1), 255), "PNG")  # 16 megapixels in a 16 KB file
    assert len(data) < 50_000 and 16_000_000 <= MAX_UPLOAD_PIXELS
    assert load_image(data).shape == (1, WORK_SIDE, 4)


@pytest.fixture
def stored_run(store, tiny):
    return train_or_load(tiny.replace(model="cnn", conv=((4, 3, 2),), hidden=()), store)


def playground():
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page(PAGES["playground"].path).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("name", ["text chunks that decompress to 67 MB", "a header claiming 30000×30000", "a GIF", "text"])
def test_hostile_uploads_on_the_playground(stored_run, name):
    data, says = BAD[name]
    at = playground()
    at.file_uploader(key="upload").upload("digit.png", data, "image/png").run()
    assert not at.exception, at.exception
    assert says in at.error[0].value


def test_each_upload_is_decoded_once(stored_run, monkeypatch):
    calls = []
    real = nnapp.predict.images.load_image

    def counting(data):
        calls.append(len(data))
        return real(data)

    monkeypatch.setattr(nnapp.predict.images, "load_image", counting)
    noise = np.random.default_rng().integers(0, 30, (280, 280), dtype=np.uint8)  # content no other test uploads
    data = encoded(Image.fromarray(np.minimum(np.asarray(DIGIT.convert("L")), 255 - noise)), "PNG")
    at = playground()
    at.file_uploader(key="upload").upload("digit.png", data, "image/png").run()
    assert not at.exception and any("predicted-digit" in m.value for m in at.markdown), "no prediction"
    for _ in range(3):
        at.run()
    again = playground()  # another browser session, the same file
    again.file_uploader(key="upload").upload("same.png", data, "image/png").run()
    assert calls == [len(data)]
    nonce = chunk(b"tEXt", b"nonce\x00" + noise.tobytes()[:16].hex().encode())  # a failure is remembered too
    bad = png_with(nonce, *[chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * 900_000, 9))] * 75)
    at.file_uploader(key="upload").set_value(("bad.png", bad, "image/png")).run()
    at.run()
    assert calls == [len(data), len(bad)] and "not an image" in at.error[0].value
