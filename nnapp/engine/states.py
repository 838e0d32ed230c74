"""The states things in nnapp can be in, as types: a run's or task's status, a claim's outcome, a task's kind.

Which statuses are finished, active, a problem or partial is decided here and nowhere else; code compares
with members (Status.DONE), never with the strings the store holds.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """What the store writes for a run or a task; UNREADABLE is never written (see below)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    # Stopped on purpose by a sweep's pruner after an epoch: its curves so far are kept, it has no weights and
    # no test score, and it is not finished: launching the config trains it in full.
    PRUNED = "pruned"
    # Never written: a row the store cannot read back (damaged JSON, a wrong type, a config this version
    # refuses) is shown with this status, its key and the reason, and can be deleted.
    UNREADABLE = "unreadable"

    @classmethod
    def written(cls) -> tuple[Status, ...]:
        """Every status the store writes."""
        return tuple(s for s in cls if s is not cls.UNREADABLE)

    @classmethod
    def active(cls) -> tuple[Status, ...]:
        """Someone is (or will be) working on it."""
        return (cls.QUEUED, cls.RUNNING)

    @classmethod
    def finished(cls) -> tuple[Status, ...]:
        """Ended in a way that training it again would repeat: served from the store."""
        return (cls.DONE, cls.DIVERGED)

    @classmethod
    def problems(cls) -> tuple[Status, ...]:
        """Shown with its message as something that went wrong or was stopped."""
        return (cls.FAILED, cls.CANCELLED, cls.DIVERGED, cls.INTERRUPTED, cls.UNREADABLE)

    @classmethod
    def neutral(cls) -> tuple[Status, ...]:
        """Stopped on purpose before its end (by a person, or a sweep's pruner): shown as a pause with what it
        learned so far, not as something that went wrong."""
        return (cls.CANCELLED, cls.PRUNED)

    @classmethod
    def stopped(cls) -> tuple[Status, ...]:
        """Ended by a person or by a dead process rather than by the training itself: a sweep asks again."""
        return (cls.CANCELLED, cls.INTERRUPTED)

    @property
    def icon(self) -> str:
        return ICONS[self]


ICONS = {
    Status.QUEUED: "…",
    Status.RUNNING: "▶",
    Status.DONE: "✓",
    Status.FAILED: "✗",
    Status.CANCELLED: "■",
    Status.DIVERGED: "↯",
    Status.INTERRUPTED: "!",
    Status.UNREADABLE: "⚠",
    Status.PRUNED: "✂",
}


class ClaimState(StrEnum):
    """What claiming a config (or a task) in the store found."""

    CACHED = "cached"  # finished before: serve it
    ATTACHED = "attached"  # someone is working on it: follow it
    CLAIMED = "claimed"  # this caller does it
    QUEUED = "queued"  # (a job manager's answer) claimed and put in its queue


class TaskKind(StrEnum):
    """The kinds of background work a job process runs (nnapp.tasks.run holds their functions)."""

    TRAIN = "train"
    NOT_A_DIGIT = "not_a_digit"
    TSNE = "tsne"
    LR_FIND = "lr_find"
    SWEEP = "sweep"
