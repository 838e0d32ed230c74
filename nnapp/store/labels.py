"""What a person calls a run: its name, free-text notes and tags, kept in a table of their own.

They are not part of the config, so they never change a run's key, and a retrain keeps them. A store made
before this table gets it when it is opened for writing; one opened read-only without it reads as unnamed.
All three are user text: pages show them as text (ui.escaped), never as Markdown.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

SCHEMA = """
CREATE TABLE IF NOT EXISTS run_labels (
    key TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', notes TEXT NOT NULL DEFAULT '', tags TEXT NOT NULL DEFAULT ''
);
"""
TABLES = ("run_labels",)
MAX_NAME = 120  # characters
MAX_NOTES = 4000
MAX_TAGS = 20
MAX_TAG = 40


@dataclass(frozen=True)
class Labels:
    name: str = ""  # "" : the run goes by its default name (nnapp.engine.names.default_name)
    notes: str = ""
    tags: tuple[str, ...] = ()

    def matches(self, words: str) -> bool:
        """Whether every word of a search is in the name, notes or tags (case-insensitive)."""
        text = " ".join((self.name, self.notes, *self.tags)).casefold()
        return all(word in text for word in words.casefold().split())


def name_problem(text: str) -> str | None:
    """Why `text` cannot name a run (a line break, a tab, a right-to-left override or another control or
    invisible formatting character), or None; an empty name is the run's default name."""
    odd = next((c for c in text if unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp")), None)
    return None if odd is None else f"a run's name cannot hold control or invisible formatting characters (here {odd!r})"


def clean_name(text: object) -> str:
    """A name on one line, without surrounding spaces, at most MAX_NAME characters."""
    return " ".join(str(text).split())[:MAX_NAME]


def parse_tags(text: object) -> tuple[str, ...]:
    """Tags from 'a, b,c': each on one line, trimmed, without repeats, at most MAX_TAGS of MAX_TAG characters."""
    tags = []
    for part in str(text).split(","):
        tag = " ".join("".join(c for c in part if unicodedata.category(c)[0] != "C").split())[:MAX_TAG]
        if tag and tag.casefold() not in {t.casefold() for t in tags}:
            tags.append(tag)
    return tuple(tags[:MAX_TAGS])


def _text(value: object, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""  # a damaged cell reads as empty


class RunLabels:
    """The labels part of Store: `self._db()` comes from it."""

    def _has_labels(self, db) -> bool:
        return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='run_labels'").fetchone() is not None

    def all_labels(self) -> dict[str, Labels]:
        """Every labelled run's labels, by key."""
        with self._db() as db:
            if not self._has_labels(db):
                return {}
            rows = db.execute("SELECT key, name, notes, tags FROM run_labels").fetchall()
        return {r["key"]: _labels(r) for r in rows if isinstance(r["key"], str)}

    def labels(self, key: str) -> Labels:
        with self._db() as db:
            if not self._has_labels(db):
                return Labels()
            row = db.execute("SELECT key, name, notes, tags FROM run_labels WHERE key=?", (key,)).fetchone()
        return _labels(row) if row else Labels()

    def set_labels(self, key: str, name: str | None = None, notes: str | None = None, tags=None) -> Labels:
        """Change any of a run's name, notes and tags (None leaves one as it is); returns them as stored.
        ValueError with a sentence for a name that holds control characters (name_problem)."""
        if name is not None and (problem := name_problem(str(name))):
            raise ValueError(problem)
        old = self.labels(key)
        new = Labels(
            clean_name(name) if name is not None else old.name,
            str(notes)[:MAX_NOTES] if notes is not None else old.notes,
            (parse_tags(tags) if isinstance(tags, str) else parse_tags(",".join(tags))) if tags is not None else old.tags,
        )
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO run_labels (key, name, notes, tags) VALUES (?, ?, ?, ?)",
                (key, new.name, new.notes, ",".join(new.tags)),
            )
        return new


def _labels(row) -> Labels:
    return Labels(
        clean_name(_text(row["name"], MAX_NAME)), _text(row["notes"], MAX_NOTES), parse_tags(_text(row["tags"], 10_000))
    )
