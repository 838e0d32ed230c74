"""A row of the runs table read back into a Run, every column checked.

A row that cannot be read (a column that is not valid JSON, a wrong type inside it, a config this version
refuses) becomes a Run with the status 'unreadable', its key and the reason; it never raises, so one
damaged row cannot stop the others from being listed, shown or exported.
"""

from __future__ import annotations

import math
import re
import sqlite3
from typing import Any

from nnapp.engine.config import ConfigError, RunConfig
from nnapp.engine.fields import KEY, RUN_KEY, loads, shown
from nnapp.engine.records import Run
from nnapp.engine.states import Status
from nnapp.store.owners import owner_of

MAX_JSON = 1 << 20  # characters in one JSON column: a run's are a few kilobytes
SHA256 = re.compile(r"[0-9a-f]{64}")
WEIGHTS_FILE = re.compile(r"[0-9a-f]{16}-[0-9a-f]{16}\.safetensors")  # KEY-CHECKSUM.safetensors, see weights.py


class Unreadable(ValueError):
    """Why a row cannot be read; the message is shown with the run's key."""


def decode(row: sqlite3.Row) -> Run:
    """The Run a row describes, or an unreadable Run that says what is wrong with the row."""
    values: dict[str, Any] = {"config": None}
    try:
        values["key"] = _key(_column(row, "key"))
        values["config"] = read_config(_column(row, "config"))
        values.update(_columns(row))
        classes = len(values["config"].data_spec().classes)
        values["progress"] = _checked(row, "progress", _progress)
        values["test"] = _checked(row, "test", lambda v: _test(v, classes))
        return Run(**values)
    except Unreadable as err:
        key = values.get("key") or _shown_key(row)
        return Run(key, values["config"], Status.UNREADABLE, _number_or(row, "created", 0.0), message=str(err))


def read_config(text: Any) -> RunConfig:
    """A stored or imported config: JSON that RunConfig reads and validates (without this machine's limits)."""
    data = _json(text, "config")
    if data is None:
        raise Unreadable("its config is empty")
    try:
        config = RunConfig.from_dict(data)
    except ConfigError as err:
        raise Unreadable(f"its config cannot be read: {_cut(str(err))}") from None
    problems = config.validate()
    if problems:
        raise Unreadable(f"its config is not valid: {_cut('; '.join(f'{k}: {v}' for k, v in problems.items()))}")
    return config


def read_test(data: Any, config: RunConfig) -> dict:
    """Test results read from anywhere (the store, an imported bundle): checked as the store's are."""
    return _test(data, len(config.data_spec().classes))


def _column(row: sqlite3.Row, name: str) -> Any:
    try:
        return row[name]
    except (IndexError, KeyError):
        raise Unreadable(f"the store has no {name} column") from None


def _key(value: Any) -> str:
    if not isinstance(value, str) or not RUN_KEY.fullmatch(value):
        raise Unreadable("its key is not 16 hex digits")
    return value


def _shown_key(row: sqlite3.Row) -> str:
    try:
        key = row["key"]
    except (IndexError, KeyError):
        return "?"
    return key[:40] if isinstance(key, str) else shown(key)


def _columns(row: sqlite3.Row) -> dict[str, Any]:
    status = _column(row, "status")
    if not isinstance(status, str) or status not in Status.written():
        raise Unreadable(f"its status {shown(status)} is not one nnapp writes")
    values = {"status": Status(status), "created": _number(_column(row, "created"), "created")}
    for name in ("started", "finished", "train_seconds"):
        value = _column(row, name)
        values[name] = None if value is None else _number(value, name)
    for name in ("device", "precision", "message"):
        value = _column(row, name)
        if value is not None and not isinstance(value, str):
            raise Unreadable(f"its {name} is not text")
        values[name] = value
    sha, parent, pid = _column(row, "weights_sha256"), _column(row, "parent"), _column(row, "pid")
    if sha is not None and not (isinstance(sha, str) and SHA256.fullmatch(sha)):
        raise Unreadable("its weights checksum is not a SHA-256")
    if parent is not None and not (isinstance(parent, str) and KEY.fullmatch(parent)):
        raise Unreadable("its parent is not a run key")
    if pid is not None and not (isinstance(pid, int) and 0 < pid < 2**31):
        raise Unreadable("its process id is not a number")
    weights_file = row["weights_file"] if "weights_file" in row.keys() else None  # a read-only store from before it
    if weights_file is not None and not (isinstance(weights_file, str) and WEIGHTS_FILE.fullmatch(weights_file)):
        raise Unreadable("its weights file is not a name nnapp writes")
    process = row["process"] if "process" in row.keys() else None
    process = process if isinstance(process, str) and len(process) < 200 else None  # otherwise it proves nothing
    owned = {"weights_file": weights_file, "process": process, "owner": owner_of(row)}
    return {**values, "weights_sha256": sha, "parent": parent, "pid": pid, **owned}


def _checked(row: sqlite3.Row, name: str, check) -> Any:
    data = _json(_column(row, name), name)
    if data is None:
        return None
    try:
        return check(data)
    except Unreadable as err:
        raise Unreadable(f"its {name} {err}") from None


def _json(text: Any, name: str) -> Any:
    if text is None:
        return None
    if not isinstance(text, str):
        raise Unreadable(f"its {name} is not text")
    if len(text) > MAX_JSON:
        raise Unreadable(f"its {name} is too large ({len(text):,} characters)")
    try:
        return loads(text)
    except ValueError as err:  # JSONDecodeError included
        raise Unreadable(f"its {name} is not valid JSON ({_cut(str(err), 60)})") from None


def _progress(data: Any) -> dict:
    if not isinstance(data, dict):
        raise Unreadable("is not a JSON object")
    for name in ("step", "total_steps", "epoch", "epochs"):
        if not _whole(data.get(name)):
            raise Unreadable(f"has no whole-number {name}")
    for name in ("samples_per_s", "elapsed", "eta"):
        if data.get(name) is not None and not _finite(data[name]):
            raise Unreadable(f"has a {name} that is not a number")
    if not isinstance(data.get("phase"), str):
        raise Unreadable("has no phase")
    return data


def _test(data: Any, classes: int) -> dict:
    if not isinstance(data, dict):
        raise Unreadable("is not a JSON object")
    if not (_finite(data.get("accuracy")) and 0 <= data["accuracy"] <= 1):
        raise Unreadable("has no accuracy between 0 and 1")
    if not _number_like(data.get("loss")):
        raise Unreadable("has no loss")
    confusion = data.get("confusion")
    square = isinstance(confusion, list) and len(confusion) == classes
    if not square or not all(
        isinstance(r, list) and len(r) == classes and all(_whole(v) and v >= 0 for v in r) for r in confusion
    ):
        raise Unreadable(f"has no {classes}×{classes} confusion matrix of counts")
    for name in ("precision", "recall", "f1"):
        values = data.get(name)
        if not (isinstance(values, list) and len(values) == classes and all(_finite(v) for v in values)):
            raise Unreadable(f"has no {name} per class")
    return data


def _number(value: Any, name: str) -> float:
    if not _finite(value):
        raise Unreadable(f"its {name} is not a number")
    return value


def _number_or(row: sqlite3.Row, name: str, default: float) -> float:
    try:
        value = row[name]
    except (IndexError, KeyError):
        return default
    return value if _finite(value) else default


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return _number_like(value) and math.isfinite(value)


def _number_like(value: Any) -> bool:
    """A number, NaN and infinities included (a diverged loss is one)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and (not isinstance(value, int) or abs(value) < 2**63)


def _cut(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
