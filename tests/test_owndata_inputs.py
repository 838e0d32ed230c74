"""Hostile and broken inputs to a data set of your own: each gets a sentence and stores nothing broken."""

import io
import os
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from nnapp.data import files as sources
from nnapp.data.files import SourceError
from nnapp.data.make import add_files, add_uploads
from nnapp.engine import datasets
from nnapp.store.store import Store
from tests.owndata import drawn_zip, png, zip_of
from tests.shapes import drawings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOOD = {f"{'ab'[i % 2]}/{i // 2}.png": png(image[..., :3]) for i, image in enumerate(drawings(["circle", "arrow"], 3)[0])}


def nothing_stored(store: Store) -> bool:
    return not store.data_sets() and not list(store.datasets_folder.glob("*"))


def refused(store: Store, blob: bytes, *words: str) -> str:
    with pytest.raises(SourceError) as err:
        add_files(store, "hostile", blob)
    message = str(err.value)
    assert all(w in message for w in words), message
    assert message.count("\n") == 0 and nothing_stored(store)
    return message


@pytest.mark.parametrize(
    "name",
    [
        "../evil.png",
        "a/../../evil.png",
        "/etc/evil.png",
        "C:\\evil.png",
        "a\\..\\..\\evil.png",
        "a/b/../../../x.png",
        "\\\\server\\share\\x.png",
        "D:/x.png",
    ],
)
def test_a_zip_with_a_path_that_leads_outside_is_refused(store, name):
    with zipfile.ZipFile(buf := io.BytesIO(), "w") as zf:
        for good, blob in GOOD.items():
            zf.writestr(good, blob)
        zf.writestr(zipfile.ZipInfo(name), b"x")
    refused(store, buf.getvalue(), "leads outside")


@pytest.mark.parametrize("target", ["/etc/passwd", "../../secret", "b/0.png"])
def test_a_zip_with_a_symbolic_link_is_refused(store, target):
    with zipfile.ZipFile(buf := io.BytesIO(), "w") as zf:
        for good, blob in GOOD.items():
            zf.writestr(good, blob)
        link = zipfile.ZipInfo("a/link.png")
        link.external_attr = (0o120777 << 16) | 0x20
        zf.writestr(link, target)
    refused(store, buf.getvalue(), "symbolic link")


def declared(blob: bytes, name: str, size: int) -> bytes:
    """The zip with `name`'s uncompressed size, as its local and central headers declare it, set to `size` (a lie)."""
    data, encoded = bytearray(blob), name.encode()
    for signature, size_at, length_at, name_at in ((b"PK\x03\x04", 22, 26, 30), (b"PK\x01\x02", 24, 28, 46)):
        start = data.find(signature)
        while start != -1:
            (length,) = struct.unpack_from("<H", data, start + length_at)
            if data[start + name_at : start + name_at + length] == encoded:
                struct.pack_into("<I", data, start + size_at, size)
            start = data.find(signature, start + 4)
    return bytes(data)


def test_zips_that_unpack_to_too_much_are_refused_before_unpacking(store):
    big = declared(zip_of({**GOOD, "a/big.png": b"\0" * 1000}), "a/big.png", 600_000_000)
    refused(store, big, "600 MB", "500 MB")
    many = zip_of({**GOOD, **{f"b/{i}.png": b"\0" * 100 for i in range(5)}})
    for i in range(5):  # five of them declaring 110 MB each: 550 MB together
        many = declared(many, f"b/{i}.png", 110_000_000)
    refused(store, many, "500 MB")


def test_a_bomb_that_lies_about_its_size_is_refused(store):
    """A member that inflates beyond what its header says is cut at the declared size and refused."""
    with zipfile.ZipFile(buf := io.BytesIO(), "w", zipfile.ZIP_DEFLATED) as zf:
        for good, blob in GOOD.items():
            zf.writestr(good, blob)
        zf.writestr("a/bomb.png", b"\0" * (50 << 20))  # 50 MiB of zeros: a few kilobytes packed
    bomb = declared(buf.getvalue(), "a/bomb.png", 1000)
    assert len(bomb) < 200_000
    refused(store, bomb, "bomb.png", "cannot be unpacked")


def test_more_than_50000_images_are_refused_before_decoding(store, monkeypatch):
    decoded = []
    monkeypatch.setattr(sources, "load_image", lambda data: decoded.append(1))
    with zipfile.ZipFile(buf := io.BytesIO(), "w", zipfile.ZIP_STORED) as zf:
        for i in range(datasets.MAX_IMAGES + 1):
            zf.writestr(f"{'ab'[i % 2]}/{i}.png", b"")
    refused(store, buf.getvalue(), "50,001 images", "50,000")
    assert not decoded


def test_an_encrypted_member_is_refused(store):
    blob = bytearray(zip_of({**GOOD, "a/secret.png": b"x"}))
    start = blob.find(b"PK\x01\x02")
    while start != -1:  # the encryption flag on every central directory entry
        blob[start + 8] |= 1
        start = blob.find(b"PK\x01\x02", start + 4)
    refused(store, bytes(blob), "encrypted")


def test_a_file_that_is_not_a_zip_is_one_sentence(store):
    for blob in (b"", b"PK\x03\x04 not really", png(np.zeros((5, 5, 3), np.uint8))):
        refused(store, blob, "not a zip file")


def test_images_that_do_not_decode_are_listed_and_the_rest_kept(store):
    huge = Image.new("L", (6000, 5000))  # 30 megapixels: refused from its header, never decoded
    buf = io.BytesIO()
    huge.save(buf, format="PNG")
    broken = {
        "a/garbage.png": b"not an image at all",
        "a/truncated.png": png(np.full((40, 40, 3), 255, np.uint8))[:60],
        "b/huge.png": buf.getvalue(),
        "b/notes.txt": b"hello",
        "b/blank.png": png(np.full((40, 40, 3), 255, np.uint8)),
        "loose.png": GOOD["a/0.png"],
    }
    made, gathered = add_files(store, "mixed", zip_of({**GOOD, **broken}))
    assert made.counts == (3, 3) and made.classes == ("a", "b")
    reasons = dict(gathered.skipped)
    assert set(reasons) == set(broken)
    assert "megapixels" in reasons["b/huge.png"] and "not a PNG or JPEG" in reasons["b/notes.txt"]
    assert "blank" in reasons["b/blank.png"] and "class folder" in reasons["loose.png"]
    assert "6 file(s) were left out" in gathered.notes()[0]


@pytest.mark.parametrize(
    "files, words",
    [
        ({"only/1.png": GOOD["a/0.png"], "only/2.png": GOOD["a/1.png"]}, ["2 to 50 classes, not 1"]),
        ({**GOOD, "empty/": b""}, ["'empty' has no images"]),
        ({**GOOD, "c/bad.png": b"garbage"}, ["'c' has no images"]),
        ({**GOOD, "A/0.png": GOOD["a/0.png"]}, ["given twice"]),
        ({**GOOD, ("x" * 61) + "/0.png": GOOD["a/0.png"]}, ["longer than 60 characters"]),
        ({**GOOD, "bell\x07/0.png": GOOD["a/0.png"]}, ["cannot be shown"]),
        ({**GOOD, " spaced/0.png": GOOD["a/0.png"]}, ["begins or ends with a space"]),
    ],
)
def test_classes_that_cannot_be_are_refused_naming_why(store, files, words):
    refused(store, zip_of(files), *words)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=70), max_size=55))
def test_any_class_names_make_a_data_set_or_one_sentence(tmp_path_factory, names):
    store = Store(tmp_path_factory.mktemp("names"))
    problem = datasets.class_names_problem(names)
    if problem is None:
        made = store.create_dataset("any", names)
        assert list(made.classes) == names and datasets.find(made.ref).classes == tuple(names)
    else:
        assert isinstance(problem, str) and "\n" not in problem
        with pytest.raises(ValueError, match="^"):
            store.create_dataset("any", names)
        assert not store.data_sets()


@pytest.mark.parametrize("name", ["", "My Shapes", "mnist", "cifar10", "x" * 41, "../up", "-dash", "é"])
def test_data_set_names_that_cannot_be_are_refused(store, name):
    with pytest.raises(ValueError) as err:
        store.create_dataset(name, ["a", "b"])
    assert str(err.value) and not store.data_sets()


def test_the_same_image_in_two_classes_is_said_not_refused(store):
    made, gathered = add_files(store, "twice", zip_of({**GOOD, "b/copy.png": GOOD["a/0.png"]}))
    assert made.counts == (3, 4) and made.conflicts == 1
    assert sorted(gathered.conflicts) == ["a/0.png", "b/copy.png"] and "two classes" in gathered.notes()[0]


def test_a_folder_with_links_or_special_files(store, tmp_path):
    for name, blob in GOOD.items():
        (tmp_path / "set" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "set" / name).write_bytes(blob)
    os.mkfifo(tmp_path / "set" / "a" / "pipe.png")  # a reader would wait for ever: it is never opened
    made, gathered = add_files(store, "folder", tmp_path / "set")
    assert made.counts == (3, 3) and dict(gathered.skipped) == {"a/pipe.png": "not a PNG or JPEG file"}
    os.symlink("/etc/passwd", tmp_path / "set" / "b" / "link.png")
    with pytest.raises(SourceError, match="symbolic link"):
        add_files(store, "linked", tmp_path / "set")
    assert store.data_set("linked") is None


def test_a_data_set_never_grows_beyond_its_limit(store, monkeypatch):
    monkeypatch.setattr(datasets, "MAX_IMAGES", 8)
    made, _ = add_files(store, "small", zip_of(GOOD))
    with pytest.raises(SourceError, match="would hold 12 images"):
        add_files(store, "small", zip_of(GOOD))
    assert store.data_set("small") == made


def test_uploads_are_decoded_once_per_content(store, monkeypatch):
    add_files(store, "up", zip_of(GOOD))
    calls = []
    real = sources.load_image
    monkeypatch.setattr(sources, "load_image", lambda data: calls.append(len(data)) or real(data))
    same = GOOD["a/0.png"]
    made, gathered = add_uploads(store, "up", [("one.png", same), ("two.png", same), ("three.jpg", b"nope")], 1)
    assert (
        len(calls) == 2
        and made.counts == (3, 5)
        and dict(gathered.skipped) == {"three.jpg": "That file is not an image nnapp can read"}
    )


def test_the_cli_says_one_line_and_stores_nothing(home, tmp_path):
    (tmp_path / "evil.zip").write_bytes(zip_of({**GOOD, "../../evil.png": b"x"}))
    (tmp_path / "one.zip").write_bytes(drawn_zip(names=["circle"], per_class=3))
    env = {**os.environ, "NNAPP_HOME": str(home)}
    for args in (["data", "add", "evil", "--from", str(tmp_path / "evil.zip")], ["data", "add", "one", "--from", str(tmp_path / "one.zip")],
                 ["data", "add", "Bad Name", "--from", str(tmp_path / "one.zip")], ["data", "add", "x", "--from", str(tmp_path / "missing")],
                 ["data", "show", "nothing"], ["train", "--set", "dataset=nothing"]):  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-m", "nnapp", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.startswith("nnapp: error:") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert nothing_stored(Store(home))
