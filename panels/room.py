"""What the Room page (the presenter's) and the Draw page (the audience's) share: the room itself, the model
answering, and the answer to one drawing."""

from __future__ import annotations

import html

import numpy as np
import streamlit as st

import ui
from nnapp.engine.records import Run
from nnapp.predict import ood
from nnapp.predict.inference import for_inference
from nnapp.predict.room import NOT_A_DIGIT, Entry, Room, Tally
from nnapp.store.store import Store


@st.cache_resource
def room() -> Room:
    """The server's one room, shared by every session."""
    return Room()


@st.cache_resource(max_entries=8)
def _model(home: str, key: str, sha: str):
    return for_inference(Store(home).load_model(key)[0])


def models() -> list[Run]:
    """Finished MNIST runs with weights, the best first."""
    runs = [r for r in ui.store().runs() if r.has_weights() and r.config.dataset == "mnist"]
    return sorted(runs, key=lambda r: -(r.accuracy or 0))


def answering(runs: list[Run] | None = None) -> Run | None:
    """The run that answers the room: the presenter's pick while it is there, else the best finished model."""
    runs = models() if runs is None else runs
    picked = [r for r in runs if r.key == room().run_key]
    return (picked or runs or [None])[0]


def warm(run: Run) -> None:
    """Load the answering model and its check before the first drawing comes (the presenter's page does)."""
    _model(str(ui.store().home), run.key, run.weights_sha256)
    ui.not_digit_check(run)


def answer(run: Run, digit: np.ndarray) -> int:
    """The model's digit for a 28×28 drawing, or NOT_A_DIGIT when its check says the drawing is none."""
    check = ui.not_digit_check(run)
    verdict = ood.judge(
        _model(str(ui.store().home), run.key, run.weights_sha256), digit, check if isinstance(check, dict) else None
    )
    return verdict.digit if verdict.is_digit else NOT_A_DIGIT


def shown(answer: int) -> str:
    return "not a digit" if answer == NOT_A_DIGIT else str(answer)


def wall_html(entries: list[Entry]) -> str:
    """Everyone's latest drawing as tiles: the drawing, who drew it, what was asked and what the model read.
    Names are other people's text: escaped."""
    tiles = []
    for e in entries:
        colour = "#15803d" if e.right else "#b91c1c"
        tiles.append(
            f"<figure data-testid='room-tile' data-seat='{html.escape(e.seat)}' style='margin:0;text-align:center'>"
            f"<img src='{e.png}' width='84' height='84' style='image-rendering:pixelated;border:1px solid #d1d5db;border-radius:6px' alt='drawing'>"
            f"<figcaption style='font-size:0.8rem;line-height:1.2'>{html.escape(e.who)}<br>"
            f"<b style='color:{colour}'>{html.escape(shown(e.answer))}</b> for {e.asked}</figcaption></figure>"
        )
    grid = "display:grid;grid-template-columns:repeat(auto-fill,minmax(96px,1fr));gap:10px"
    return f"<div data-testid='room-wall' style='{grid}'>{''.join(tiles)}</div>"


def tally_text(tally: Tally) -> str:
    if not tally.drawings:
        return "No drawings yet."
    line = f"**{tally.right} of {tally.drawings}** read right ({tally.share_right:.0%})"
    if tally.confusions:
        line += " · confused: " + ", ".join(f"{a} read as {shown(b)} ×{n}" for a, b, n in tally.confusions[:6])
    return line
