"""Room: a team demo. The presenter shows a link and its QR code; everyone opens it on a phone (the Draw page)
and draws the digit asked for; the wall here shows each person's latest drawing with the model's answer and a
tally, redrawn every WALL_EVERY seconds by a fragment that reads the room's shared state (panels/room.py)."""

from __future__ import annotations

import io
import socket
import urllib.parse

import segno
import streamlit as st

import ui
from panels.room import answering, models, room, tally_text, wall_html, warm

WALL_EVERY = 0.5  # seconds: a drawing is on the wall within about this much of its answer


def audience_link() -> str:
    """The Draw page's address as this browser reached the server; on a shared server opened as localhost, with
    this machine's network address instead, which phones can reach (the presenter may type another one)."""
    url = urllib.parse.urlparse(st.context.url or "http://localhost:8501/room")
    base, netloc = url.path.rstrip("/").rsplit("/", 1)[0], url.netloc
    if url.hostname in ui.LOOPBACK and ui.is_shared():
        netloc = f"{network_address()}{f':{url.port}' if url.port else ''}"
    return f"{url.scheme}://{netloc}{base}/{ui.url_path('draw')}"


def network_address() -> str:
    """This machine's address as its own name resolves (no traffic), or localhost where that is a loopback one."""
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        return "localhost"
    return "localhost" if address.startswith("127.") else address


def qr_png(link: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(link, error="m").save(buffer, kind="png", scale=8, border=2)
    return buffer.getvalue()


def settings_ui(runs) -> None:
    """The model answering and the digit asked for, applied at once; Reset clears the wall and the tally."""
    current = answering(runs)
    keys = [r.key for r in runs]
    by_key = {r.key: r for r in runs}
    left, mid, right = st.columns([3, 1, 1])
    key = left.selectbox(
        "Model", keys, index=keys.index(current.key), format_func=lambda k: ui.run_title(by_key[k]), key="room_model"
    )
    prompt = mid.selectbox("Ask for", list(range(10)), index=room().prompt, key="room_prompt")
    if (prompt, key) != (room().prompt, room().run_key):
        room().set(prompt, key)
    warm(by_key[key])  # the audience's first drawing is answered as fast as the next
    right.write("")
    if right.button("Reset the wall", key="room_reset"):
        room().reset()


def link_ui() -> None:
    link = st.text_input(
        "Link for the audience",
        value=audience_link(),
        key="room_link",
        help="Change the host to this machine's network address if you opened nnapp as localhost.",
    )
    left, right = st.columns([1, 3])
    left.image(qr_png(link), width=180, caption="Scan to draw")
    right.markdown(f"Open **{ui.escaped(link)}** on a phone, draw the digit asked for, lift the pen.")
    if ui.configured_password() is not None:
        right.caption("People sign in with the server's password and their name first.")


def wall_view() -> None:
    st.markdown(tally_text(room().tally()))
    entries = room().wall()
    if not entries:
        st.caption("Everyone's latest drawing shows here with the model's answer.")
        return
    st.html(wall_html(entries))


def main() -> None:
    st.title("Room", anchor=False)
    runs = models()
    if not runs:
        st.info("The room needs a finished MNIST model: train one first (the default model takes under a minute).")
        ui.page_link("train")
        return
    settings_ui(runs)
    link_ui()
    st.subheader("Wall")
    st.fragment(run_every=WALL_EVERY)(wall_view)()


main()
