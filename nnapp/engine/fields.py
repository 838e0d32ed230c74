"""What each config field accepts: how a JSON or --set value becomes it, and its documented range.

Every check here names its field and never raises on a value of the wrong type, size or shape: a config
read from a hostile file, a command line or a damaged run store gets a message per field, not a traceback.
The README's table of config fields lists the same ranges.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nnapp.engine.registry import DATASETS

MAX_TEXT = 200  # characters in a string field; every name and key is far shorter
MAX_SET_VALUE = 10_000  # characters in one --set value
MAX_ITEMS = 1_000  # entries in a list read from JSON, before the field's own (much lower) limit applies
MAX_SEED = 2**63 - 1
MAX_HIDDEN_LAYERS = 16
MAX_CONV_BLOCKS = 8
MAX_WIDTH = 8192
MAX_CHANNELS = 1024
MAX_IMAGES = max(spec.train_size for _, spec in DATASETS.items())  # the largest training set nnapp knows
KEY = re.compile(r"[0-9a-f]{16}")  # a run key: RunConfig.key()
RUN_KEY = re.compile(r"[0-9a-f]{16}(\.retrain)?")  # a key in the runs table: a run's, or its retrain's (records.RETRAIN)
FINGERPRINT = re.compile(r"[0-9a-f]{12}")  # personal drawings: runs.personal_fingerprint()


@dataclass(frozen=True)
class Range:
    """A number from `low` to `high`; `open_low`/`open_high` leave the end itself out."""

    low: float
    high: float | None  # None: no upper end of its own (another field sets it)
    open_low: bool = False
    open_high: bool = False
    whole: bool = False  # a whole number

    def __str__(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        low = f"above {self.low:g}" if self.open_low else f"at least {self.low:g}"
        if self.high is None:
            return f"{kind} {low}"
        high = f"below {self.high:g}" if self.open_high else f"at most {self.high:g}"
        if self.whole and not self.open_low and not self.open_high:
            return f"a whole number from {self.low:,} to {self.high:,}"
        return f"{kind} {low} and {high}"

    def problem(self, value: Any) -> str | None:
        if not is_number(value) or (self.whole and not isinstance(value, int)):
            return f"must be {self}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be {self}"
        too_low = value <= self.low if self.open_low else value < self.low
        too_high = self.high is not None and (value >= self.high if self.open_high else value > self.high)
        return f"must be {self}" if too_low or too_high else None


RANGES: dict[str, Range] = {
    "val_fraction": Range(0, 0.5, open_low=True, open_high=True),
    "train_subset": Range(0, MAX_IMAGES, whole=True),  # and at most the data set's own training images
    "dropout": Range(0, 1, open_high=True),
    "lr": Range(0, 10, open_low=True),
    "momentum": Range(0, 1, open_high=True),
    "weight_decay": Range(0, 1),
    "batch_size": Range(1, None, whole=True),  # at most the training images after the split: RunConfig's check
    "epochs": Range(1, 1000, whole=True),
    "label_smoothing": Range(0, 1, open_high=True),
    "patience": Range(0, 1000, whole=True),
    "seed": Range(0, MAX_SEED, whole=True),
}


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def shown(value: Any, limit: int = 40) -> str:
    """A value as a message may quote it: repr, cut short."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else f"a {len(str(abs(value)))}-digit number"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def choice_problem(value: Any, options) -> str | None:
    if isinstance(value, str) and value in options:
        return None
    return f"unknown value {shown(value)}; choose from {', '.join(options)}"


def bool_problem(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def hidden_problem(value: Any) -> str | None:
    rule = f"a list of at most {MAX_HIDDEN_LAYERS} widths, each from 1 to {MAX_WIDTH:,}"
    if not isinstance(value, tuple) or len(value) > MAX_HIDDEN_LAYERS:
        return f"must be {rule}"
    if not all(is_whole(w) and 1 <= w <= MAX_WIDTH for w in value):
        return f"each width must be between 1 and {MAX_WIDTH}"
    return None


def conv_problem(value: Any) -> str | None:
    """The blocks' own ranges; whether they fit the image is RunConfig's check."""
    if not isinstance(value, tuple) or len(value) > MAX_CONV_BLOCKS:
        return f"must be a list of at most {MAX_CONV_BLOCKS} [channels, kernel, pool] blocks"
    for i, block in enumerate(value, start=1):
        if not isinstance(block, tuple) or len(block) != 3 or not all(is_whole(v) for v in block):
            return f"block {i}: must be three whole numbers [channels, kernel, pool]"
        channels, kernel, pool = block
        if not 1 <= channels <= MAX_CHANNELS:
            return f"block {i}: channels must be between 1 and {MAX_CHANNELS}"
        if kernel < 1 or kernel % 2 == 0:
            return f"block {i}: kernel must be an odd number (1, 3, 5, 7…)"
        if pool < 1:
            return f"block {i}: pool must be 1 (none) or more"
    return None


def pattern_problem(pattern: re.Pattern, what: str) -> Callable[[Any], str | None]:
    def problem(value: Any) -> str | None:
        ok = isinstance(value, str) and (value == "" or pattern.fullmatch(value))
        return None if ok else f"must be empty or {what}"

    return problem


def name_problem(value: Any, limit: int = 80) -> str | None:
    """Why `value` cannot name something people see (a sweep, a run, a data set, a person), or None: text of
    1 to `limit` characters without control or format characters (a newline, a tab, a NUL, a right-to-left
    override) and without spaces at either end."""
    if not isinstance(value, str) or not value.strip():
        return "must be some text"
    if len(value) > limit:
        return f"is too long ({len(value):,} characters; at most {limit})"
    odd = next((c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp")), None)
    if odd is not None:
        return f"holds a control character ({odd!r}); use letters, digits, spaces and punctuation"
    if value != value.strip():
        return "starts or ends with a space"
    return None


def is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


CHECKS: dict[str, Callable[[Any], str | None]] = {
    "batch_norm": bool_problem,
    "augment": bool_problem,
    "hidden": hidden_problem,
    "conv": conv_problem,
    "init_from": pattern_problem(KEY, "a run key (16 hex digits)"),
    "personal": pattern_problem(FINGERPRINT, "a drawings fingerprint (12 hex digits)"),
    **{name: rng.problem for name, rng in RANGES.items()},
}


def field_problems(values: dict[str, Any], choices: dict) -> dict[str, str]:
    """Each field checked on its own: its type and its documented range."""
    problems = {}
    for name, value in values.items():
        check = CHECKS.get(name)
        message = choice_problem(value, choices[name]) if name in choices else check(value) if check else None
        if message:
            problems[name] = message
    return problems


# --- reading values ---------------------------------------------------------------------------------


def canonical(value: Any, default: Any) -> Any:
    """`value` in the one form its field keeps (`default` gives the field's type): a float field's int or
    -0.0 as a float (0.0), a list of layers as a tuple of tuples. A value of another type is left for the
    checks to name; one already canonical is returned as it is."""
    if isinstance(default, float) and is_number(value):
        try:
            number = float(value) + 0.0  # + 0.0: -0.0 becomes 0.0
        except OverflowError:
            return value
        return value if number == value and type(value) is float and math.copysign(1, value) > 0 else number
    if isinstance(default, tuple) and isinstance(value, list | tuple):
        items = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        return value if isinstance(value, tuple) and all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def coerce(name: str, value: Any, default: Any) -> Any:
    """Turn a JSON value into the type of the field's default; TypeError or ValueError with the reason."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise TypeError("expected true or false")
    if isinstance(default, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not is_whole(value):
            raise TypeError(f"must be {RANGES[name]}, not {shown(value)}")
        return value
    if isinstance(default, float):
        if not is_number(value):
            raise TypeError(f"must be {RANGES[name]}, not {shown(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise ValueError(f"must be {RANGES[name]}, not {shown(value)}")
        return number
    if isinstance(default, str):
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {shown(value)}")
        if len(value) > MAX_TEXT:
            raise ValueError(f"is too long ({len(value):,} characters)")
        return value
    if name in ("hidden", "conv") and isinstance(value, str) and len(value) <= MAX_SET_VALUE:
        value = parse_value(name, value.strip())  # "128,64" or "32:3:2,64:3:2", as --set reads them
    if name == "hidden" and is_whole(value):
        value = [value]  # one layer: 128 is [128], as --set hidden=128 reads it
    if name == "hidden":
        if not _short_list(value) or not all(is_whole(v) for v in value):
            raise TypeError("expected a list of whole numbers, e.g. [128, 64]")
        return tuple(value)
    if name == "conv":
        ok = _short_list(value) and all(_short_list(b) and len(b) == 3 and all(is_whole(v) for v in b) for b in value)
        if not ok:
            raise TypeError("expected a list of [channels, kernel, pool] blocks, e.g. [[32, 3, 2]]")
        return tuple(tuple(b) for b in value)
    raise TypeError(f"unsupported field {name}")


def _short_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) <= MAX_ITEMS


def parse_value(name: str, text: str) -> Any:
    """Read a --set value: JSON where it parses, with short forms for the layer fields; ValueError when unreadable.

    hidden=128,64   conv=32:3:2,64:3:2   augment=true   dataset=mnist
    """
    if len(text) > MAX_SET_VALUE:
        raise ValueError(f"the value is too long ({len(text):,} characters)")
    if re.fullmatch(r"-?\d{31,}", text):  # beyond every range; Python would refuse past 4,300 digits anyway
        digits = f"a number with {len(text.lstrip('-')):,} digits"
        bounded = name in RANGES and RANGES[name].high is not None
        raise ValueError(f"must be {RANGES[name]}, not {digits}" if bounded else f"{digits} is out of range")
    if name == "hidden" and text and all(part.strip().isdigit() for part in text.split(",")):
        return [_int(part) for part in text.split(",")]
    if name == "conv" and ":" in text and not text.startswith("["):
        try:
            return [[_int(v) for v in block.split(":")] for block in text.split(",")]
        except ValueError:
            return text
    if name in ("hidden", "conv") and text in ("", "none"):
        return []
    try:
        return loads(text)
    except json.JSONDecodeError:
        return text


def loads(text: str) -> Any:
    """json.loads, with a plain ValueError for JSON that Python cannot hold (JSONDecodeError still means: not JSON)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise ValueError("it is nested too deeply") from None
    except ValueError as err:
        if "integer string conversion" in str(err):
            raise ValueError("it holds a number with thousands of digits") from None
        raise ValueError(f"it cannot be read: {str(err)[:80]}") from None


def _int(text: str) -> int:
    text = text.strip()
    if len(text) > 30:
        raise ValueError(f"a number with {len(text):,} digits is out of range")
    return int(text)
