"""Draw: the Room's audience view, opened from the presenter's link or QR code on a phone. Nothing but the
digit to draw, the canvas and the model's answer; a drawing reruns only its fragment (panels/room.py)."""

from __future__ import annotations

import hashlib
import uuid

import streamlit as st

import ui
from nnapp.predict.images import preprocess
from panels.canvas import drawing_area
from panels.room import answer, answering, room, shown


def clear_canvas() -> None:
    """Clear's callback: a new canvas (a new key) in the run the click starts, not in one more rerun after it."""
    st.session_state["room_canvas"] = st.session_state.get("room_canvas", 0) + 1


@st.fragment
def canvas_view(run) -> None:
    """The canvas and the answer. Each lifted pen reruns this alone: the server's whole work for a
    drawing is this function (benchmarks/bench_room.py measures it)."""
    state = st.session_state
    if room().run_key not in (None, run.key):  # the presenter picked another model since the page opened
        run = answering()
    version = state.setdefault("room_canvas", 0)
    result = drawing_area(f"room_canvas_{version}")
    st.button("Clear", key="room_clear", icon=":material/ink_eraser:", on_click=clear_canvas)
    png = result.image_bytes
    stages = preprocess(result.image_data) if png else None
    said = "Lift the pen: the model's answer shows here."
    if stages is not None:
        digest = hashlib.sha256(png).hexdigest()
        if state.get("room_last") != digest:  # a drawing goes on the wall once, whatever reruns follow
            state["room_last"], state["room_answer"] = digest, answer(run, stages.digit)
            room().record(state.setdefault("room_seat", uuid.uuid4().hex), ui.who(), stages.digit, state["room_answer"])
        said = f"The model reads <span data-testid='room-answer' style='font-size:2.2rem;font-weight:600'>{shown(state['room_answer'])}</span>"
    if room().prompt != state["room_prompt"]:
        said += f"<br>The room now asks for a <b>{room().prompt}</b>."
    st.markdown(f"<p style='min-height:3rem'>{said}</p>", unsafe_allow_html=True)  # one element: each costs a message


def main() -> None:
    run = answering()
    if run is None:
        st.info("The room has no model yet: the presenter trains one first.")
        return
    st.session_state["room_prompt"] = room().prompt
    st.markdown(f"### Draw a {room().prompt}")
    canvas_view(run)


main()
