"""Browser sessions without a browser: Streamlit's own websocket protocol driven from Python, for the room's load
test and benchmark (tests/test_room.py, benchmarks/bench_room.py). A session opens a page, finds the canvas and the
buttons in what the server sends, draws by setting the canvas's component state as the canvas's JavaScript does
(its PNG as a data URL, the message a mouse-up sends), clicks Clear, and times each answer.

Everything it sends goes to 127.0.0.1 only; every loop is bounded by a count or a deadline.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import random
import time
from dataclasses import dataclass, field

from PIL import Image
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState, ContextInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

from tests.digits import render

ANSWER_MARK = "data-testid='room-answer'"  # the Draw page's answer
PLAYGROUND_MARK = "data-testid='predicted-digit'"  # the Playground's
MARKS = {"draw": ANSWER_MARK, "playground": PLAYGROUND_MARK}
BOXES = [(60, 40, 160, 200), (30, 30, 120, 180), (100, 60, 140, 190), (20, 10, 240, 260)]
PAUSE_S = (2.0, 4.0)  # a person's time from one answer to the next drawing (look, Clear, draw), spread evenly
DRAWINGS: dict[tuple[int, int], str] = {}


def drawing(digit: int, variant: int = 0) -> str:
    """A digit as the canvas sends it: its 280×280 PNG as a data URL."""
    buffer = io.BytesIO()
    Image.fromarray(render(digit, box=BOXES[variant % len(BOXES)])).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@dataclass
class Page:
    """What the session knows of its page from the server's messages: the script's hash, widgets, the answer."""

    script_hash: str = ""
    canvas: tuple[str, str] | None = None  # (widget id, fragment id)
    buttons: dict[str, tuple[str, str]] = field(default_factory=dict)  # label -> (widget id, fragment id)
    answer: str | None = None
    texts: list[str] = field(default_factory=list)


class Session:
    """One browser tab's websocket session on `url` (http://127.0.0.1:PORT), on page `page` (a url path)."""

    def __init__(self, url: str, page: str, mark: str = ANSWER_MARK):
        self.url, self.page_name, self.mark = url, page, mark
        self.page = Page()
        self.ws = None
        self.states: dict[str, WidgetState] = {}  # the widget states the browser would keep and send back

    async def open(self, timeout: float = 60) -> None:
        import websockets

        ws_url = self.url.replace("http://", "ws://") + "/_stcore/stream"
        self.ws = await websockets.connect(
            ws_url, subprotocols=["streamlit"], origin=self.url, max_size=None, open_timeout=timeout, ping_interval=None
        )
        await self.rerun(timeout=timeout)

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()

    async def rerun(self, fragment: str = "", triggers: list[WidgetState] = (), timeout: float = 60) -> float:
        """Ask for a run (of one fragment, with widget values changed), wait for its end; seconds until the answer
        came (or the run ended, where it sent none)."""
        state = ClientState(
            query_string="",
            page_script_hash=self.page.script_hash,
            page_name=self.page_name,
            fragment_id=fragment,
            context_info=ContextInfo(url=f"{self.url}/{self.page_name}", timezone="UTC", locale="en-US"),
        )
        state.widget_states.CopyFrom(WidgetStates(widgets=[*self.states.values(), *triggers]))
        self.page.answer, answered = None, None
        start = time.perf_counter()
        await self.ws.send(BackMsg(rerun_script=state).SerializeToString())
        deadline = start + timeout
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), max(0.01, deadline - time.perf_counter()))
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            self.read(msg)
            if answered is None and self.page.answer is not None:
                answered = time.perf_counter() - start
            if msg.WhichOneof("type") == "script_finished" and msg.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                return answered if answered is not None else time.perf_counter() - start

    def read(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self.page.script_hash = msg.new_session.page_script_hash
        if kind != "delta" or msg.delta.WhichOneof("type") != "new_element":
            return
        element, fragment = msg.delta.new_element, msg.delta.fragment_id
        which = element.WhichOneof("type")
        if which == "bidi_component" and "canvas" in element.bidi_component.component_name:
            self.page.canvas = (element.bidi_component.id, fragment)
        elif which == "button":
            self.page.buttons[element.button.label] = (element.button.id, fragment)
        elif which == "html":
            self.page.texts.append(element.html.body)
        elif which == "markdown":
            body = element.markdown.body
            self.page.texts.append(body)
            if self.mark in body:  # the text of the element the mark is on
                self.page.answer = body.split(self.mark, 1)[1].split(">", 1)[1].split("<", 1)[0].strip()

    async def draw(self, data_url: str, timeout: float = 60) -> tuple[float, str | None]:
        """Lift the pen on a drawing: the canvas's state sent as the component sends it; (seconds to the answer, answer)."""
        if self.page.canvas is None:
            raise RuntimeError(f"no canvas on {self.page_name}: {self.page.texts[-3:]}")
        widget, fragment = self.page.canvas
        value = {"drawing": {"raw": {"objects": [{"type": "path"}], "background": "#FFFFFF"}, "data": data_url}}
        self.states[widget] = WidgetState(id=widget, json_value=json.dumps(value))
        seconds = await self.rerun(fragment, timeout=timeout)
        return seconds, self.page.answer

    async def click(self, label: str, timeout: float = 60) -> float:
        """Click the button labelled `label` (a trigger, as a browser sends it)."""
        widget, fragment = self.page.buttons[label]
        self.states = {k: v for k, v in self.states.items() if self.page.canvas is None or k != self.page.canvas[0]}
        return await self.rerun(fragment, triggers=[WidgetState(id=widget, trigger_value=True)], timeout=timeout)


# --- people drawing at once ---------------------------------------------------------------------------------


def pictures() -> dict[tuple[int, int], str]:
    """Each digit in four places and sizes, as the canvas sends it (made once)."""
    if not DRAWINGS:
        DRAWINGS.update({(d, v): drawing(d, v) for d in range(10) for v in range(4)})
    return DRAWINGS


def server_process(url: str):
    """The server's process (psutil), found by the port on its command line."""
    import psutil

    port = url.rsplit(":", 1)[1]
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "--server.port" in cmd and port in cmd:
            return p
    raise RuntimeError(f"no server process on port {port}")


def cpu_seconds(process) -> float:
    times = process.cpu_times()
    return times.user + times.system


@dataclass
class Load:
    """What N sessions saw: the answers' delays, drawings without an answer, the server's CPU and memory."""

    sessions: int
    drawings: int = 0
    answered: list[float] = field(default_factory=list)
    missing: int = 0  # drawings with no answer within 30 s, and sessions that never got their page
    right: int = 0  # answers that were the digit drawn
    cpu_s: float = 0.0  # the server's, while they drew
    client_cpu_s: float = 0.0  # this process's (every client), meanwhile
    rss_mib: float = 0.0
    seconds: float = 0.0

    @property
    def cpu_ms_per_drawing(self) -> float:
        return 1000 * self.cpu_s / max(self.drawings, 1)

    def quantile(self, q: float) -> float:
        xs = sorted(self.answered)
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


async def person(session: Session, index: int, until: float, load: Load) -> None:
    """One person on an open page: draws, reads the answer, clears, pauses, until `until`."""
    rng, shapes = random.Random(index), pictures()
    try:
        if session.page.canvas is None:
            load.missing += 1
            return
        await asyncio.sleep(rng.uniform(0, PAUSE_S[1]))  # people do not start in step
        while time.perf_counter() < until:
            load.drawings += 1
            digit = rng.randrange(10)
            try:
                seconds, answer = await session.draw(shapes[(digit, rng.randrange(4))], timeout=30)
            except TimeoutError:
                load.missing += 1
                continue
            if answer is None:
                load.missing += 1
            else:
                load.answered.append(seconds)
                load.right += answer == str(digit)
            await session.click("Clear", timeout=30)
            await asyncio.sleep(rng.uniform(*PAUSE_S))
    finally:
        await session.close()


def drive(url: str, sessions: int, seconds: float, page: str = "draw") -> Load:
    """`sessions` people open `page`, then draw on it for about `seconds`; the server's CPU is counted from when
    every page is open to the last answer."""
    pictures()
    load, server = Load(sessions), server_process(url)

    async def everyone() -> None:
        people = [Session(url, page, MARKS[page]) for _ in range(sessions)]
        await asyncio.gather(*(p.open() for p in people))
        before, start, mine = cpu_seconds(server), time.perf_counter(), time.process_time()
        await asyncio.gather(*(person(p, i, start + seconds, load) for i, p in enumerate(people)))
        load.cpu_s, load.seconds = cpu_seconds(server) - before, time.perf_counter() - start
        load.client_cpu_s = time.process_time() - mine

    asyncio.run(everyone())
    load.rss_mib = server.memory_info().rss / 2**20
    return load
