"""The queue as everyone sees it (Home, Train): what trains now and what waits, whose it is, when it should start;
Cancel on one's own, and on someone else's with the server's password (ui.guarded)."""

from __future__ import annotations

import streamlit as st

import ui
from nnapp.engine.states import Status
from nnapp.jobs.fairqueue import QueueEntry

REFRESH_S = 3.0  # while anything is queued or running; nothing refreshes while the queue is empty


def when(entry: QueueEntry) -> str:
    if entry.position == 0:
        return str(Status.RUNNING)
    if entry.starts_in is None:
        return "after those ahead (no estimate yet)"
    if entry.starts_in < 60:
        return f"in about {max(entry.starts_in, 1):.0f} s"
    return f"in about {entry.starts_in / 60:.0f} min"


def queue_ui(where: str, refresh: bool = True, watched: str | None = None) -> None:
    """The queue under a heading, refreshed every REFRESH_S seconds while it holds anything (with `refresh`;
    the Train page draws it once while it watches a run by polling, which reruns nothing until the run ends).
    `watched`: the run the page shows with its own Cancel, listed here without one."""
    busy = refresh and bool(entries_now())
    st.fragment(run_every=REFRESH_S if busy else None)(queue_view)(where, busy, watched)


def entries_now() -> list:
    return [(e, ui.jobs()) for e in ui.jobs().queue()] + [(e, ui.sweeps()) for e in ui.sweeps().queue()]


def queue_view(where: str, ticking: bool = False, watched: str | None = None) -> None:
    entries = entries_now()
    if ticking and not entries:
        st.rerun()  # the page again, without the timer: a page with nothing queued costs nothing
    st.subheader("Queue")
    if not entries:
        st.caption("Nothing is training or waiting. People are served in turn: one run of each person's, then the next.")
        return
    st.caption("People are served in turn (one job of each person's, then the next); a sweep's trials are its owner's jobs.")
    for entry, manager in entries:
        mine = entry.owner == ui.who()
        left, mid, right = st.columns([1.2, 5, 1.3])
        left.markdown("▶ now" if entry.position == 0 else f"**#{entry.position}**")
        name = "you" if mine else ui.escaped(entry.owner)
        mid.markdown(f"{ui.escaped(entry.label)} · `{entry.key[:8]}` · **{name}** · {when(entry)}")
        if entry.key == watched:
            right.caption("Cancel below")
            continue
        clicked = right.button("Cancel", key=f"{where}_cancel_{entry.key}")
        if ui.guarded(f"cancel_{entry.key}", entry.owner, clicked, f"Job {entry.key[:8]}"):
            manager.cancel(entry.key)
            st.toast(f"Cancelled {entry.key[:8]}.")
            st.rerun()
