"""Reading a zip file nobody vouches for: entries that would leave the folder they unpack into, links,
encryption, and members larger than their header says (a bomb) are found before anything is unpacked."""

from __future__ import annotations

import io
import re
import zipfile

LINK = 0o120000  # a symbolic link's file type in an entry's Unix mode (the top half of external_attr)
DRIVE = re.compile(r"^[A-Za-z]:")


class ZipProblem(ValueError):
    """What is wrong with a zip or one of its entries; the message completes a sentence about it."""


def open_zip(blob: bytes) -> zipfile.ZipFile:
    """The zip in `blob`; ZipProblem when it is not one."""
    try:
        return zipfile.ZipFile(io.BytesIO(blob))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as err:
        raise ZipProblem(f"is not a zip file ({str(err)[:60]})") from None


def member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why an entry must not be unpacked: a link, a path that leads out of the folder, or encryption."""
    name = info.filename
    if (info.external_attr >> 16) & 0o170000 == LINK:
        return f"holds a symbolic link ({name[:60]!r}); only plain files are read"
    parts = re.split(r"[/\\]", name)
    if name.startswith(("/", "\\")) or DRIVE.match(name) or ".." in parts or "\0" in name:
        return f"holds a path that leads outside it ({name[:60]!r})"
    if info.flag_bits & 0x1:
        return f"holds an encrypted file ({name[:60]!r})"
    return None


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """An entry's bytes: at most what its header declares, whatever the compressed stream holds; ZipProblem
    when the two differ or the stream is damaged."""
    try:
        with zf.open(info) as f:
            data = f.read(info.file_size + 1)
    except ZipProblem:
        raise
    except Exception as err:  # zlib.error, BadZipFile (a bad CRC), RuntimeError, EOFError, NotImplementedError...
        raise ZipProblem(f"holds {info.filename[:60]!r}, which cannot be unpacked ({type(err).__name__})") from None
    if len(data) != info.file_size:
        raise ZipProblem(f"holds {info.filename[:60]!r}, which is not the size its zip entry says")
    return data
