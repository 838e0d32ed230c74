"""A room: a presenter asks everyone to draw a digit, each person's latest drawing and the model's answer go on a
wall, and a tally says how many the model got right and which digits it confuses.

One Room lives in the server's memory (the app keeps it in st.cache_resource), shared by every session: an
audience's drawing is recorded once, and the presenter's wall reads a copy of it. Its memory is bounded: the
latest drawing of at most MAX_SEATS people (28×28 pixels and a small PNG each) and a tally of counts.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

MAX_SEATS = 200  # people on the wall at once; the one who drew longest ago leaves first
NOT_A_DIGIT = -1  # the answer when the not-a-digit check says the drawing is none


@dataclass(frozen=True)
class Entry:
    """One person's latest drawing as the wall shows it."""

    seat: str  # the drawing session's own id
    who: str  # its display name
    asked: int  # the digit the room asked for when it was drawn
    answer: int  # the model's digit, or NOT_A_DIGIT
    png: str  # the 28×28 digit as a data URL, made once
    at: float  # when it was drawn (time.time())
    number: int  # the room's count of drawings when it came

    @property
    def right(self) -> bool:
        return self.answer == self.asked


@dataclass(frozen=True)
class Tally:
    drawings: int
    right: int
    confusions: list[tuple[int, int, int]]  # (asked, answered, times), the most frequent first

    @property
    def share_right(self) -> float | None:
        return self.right / self.drawings if self.drawings else None


@dataclass
class Room:
    """The room's prompt and model, everyone's latest drawing, and the tally since it was last reset."""

    prompt: int = 7
    run_key: str | None = None  # the model answering; None: the best finished model, as the pages choose it
    version: int = 0  # grows with every change: a wall redraws only what changed
    _seats: OrderedDict[str, Entry] = field(default_factory=OrderedDict, repr=False)
    _pairs: Counter = field(default_factory=Counter, repr=False)  # (asked, answered) -> times
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __repr__(self) -> str:
        return f"Room(prompt={self.prompt}, run_key={self.run_key!r}, seats={len(self._seats)}, drawings={self._count})"

    def set(self, prompt: int, run_key: str | None) -> None:
        """Ask for `prompt` (0-9), answered by run `run_key`, from now on."""
        if not 0 <= int(prompt) <= 9:
            raise ValueError("the room asks for a digit from 0 to 9")
        with self._lock:
            self.prompt, self.run_key = int(prompt), run_key
            self.version += 1

    def reset(self) -> None:
        """A clean wall and tally (the prompt and model stay)."""
        with self._lock:
            self._seats.clear()
            self._pairs.clear()
            self._count = 0
            self.version += 1

    def record(self, seat: str, who: str, digit: np.ndarray, answer: int, asked: int | None = None) -> Entry:
        """Put `seat`'s drawing (28×28 in [0, 1]) and the model's answer on the wall and in the tally."""
        png = data_url(digit)
        with self._lock:
            self._count += 1
            asked = self.prompt if asked is None else asked
            entry = Entry(seat, who, asked, int(answer), png, time.time(), self._count)
            self._seats.pop(seat, None)
            self._seats[seat] = entry
            while len(self._seats) > MAX_SEATS:
                self._seats.popitem(last=False)
            self._pairs[(asked, int(answer))] += 1
            self.version += 1
        return entry

    def wall(self, limit: int = 60) -> list[Entry]:
        """The latest drawing of each person, newest first."""
        with self._lock:
            return list(reversed(self._seats.values()))[:limit]

    def tally(self) -> Tally:
        with self._lock:
            pairs = dict(self._pairs)
        right = sum(n for (asked, answer), n in pairs.items() if asked == answer)
        wrong = sorted(((a, b, n) for (a, b), n in pairs.items() if a != b), key=lambda t: (-t[2], t[0], t[1]))
        return Tally(sum(pairs.values()), right, wrong)


def data_url(digit: np.ndarray) -> str:
    """A 28×28 digit (ink bright, in [0, 1]) as a PNG data URL, dark ink on white as it was drawn."""
    pixels = np.clip(255 - np.asarray(digit, np.float32) * 255, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, "PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
