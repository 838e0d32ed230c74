"""What a browser may leave in the server's memory: uploads only once its session has signed in, at most
PER_SESSION and TOTAL bytes of them (the oldest are let go first), a few at a time; and on a shared server the
metrics route only with the password.

Streamlit's upload route (PUT /_stcore/upload_file/SESSION/FILE) keeps whatever any open session sends, signed
in or not, for as long as the session lives. UploadGuard sits in front of it (serve.py): a session the gate has
let in (ui.gate calls signed_in) may upload; others get 403 before their file is read.
NNAPP_UPLOAD_LIMITS=PER_SESSION_MIB,TOTAL_MIB changes the caps.
"""

from __future__ import annotations

import base64
import hmac
import os
import re
import threading
import time
from collections import OrderedDict

from panels import compat

UPLOAD = re.compile(r"/_stcore/upload_file/([^/]+)/([^/]+)$")
METRICS = re.compile(r"/_stcore/metrics$")
LIMITS_ENV = "NNAPP_UPLOAD_LIMITS"
PER_SESSION, TOTAL = 128 << 20, 512 << 20  # bytes of uploads one session, and all of them, may hold
IN_FLIGHT = 2  # uploads one session may send at once (each up to server.maxUploadSize)
RECORD = 4096  # bytes an upload is counted beyond its content and name: many empty files fill the caps too
SESSIONS = 10_000  # signed-in sessions remembered; the oldest is forgotten first (it signs in again on its next rerun)


def limits() -> tuple[int, int]:
    """(per session, in all) in bytes: NNAPP_UPLOAD_LIMITS=PER_SESSION_MIB,TOTAL_MIB, else the defaults."""
    try:
        per, total = (int(float(v) * (1 << 20)) for v in os.environ[LIMITS_ENV].split(","))
        return (per, total) if 0 < per <= total else (PER_SESSION, TOTAL)
    except (KeyError, ValueError):
        return PER_SESSION, TOTAL


class Sessions:
    """The browser sessions the gate has let in, by Streamlit's session id; thread-safe (script threads write,
    the server's event loop reads)."""

    def __init__(self):
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, sid: str) -> None:
        with self._lock:
            self._ids[sid] = None
            self._ids.move_to_end(sid)
            while len(self._ids) > SESSIONS:
                self._ids.popitem(last=False)

    def discard(self, sid: str) -> None:
        with self._lock:
            self._ids.pop(sid, None)

    def __contains__(self, sid: str) -> bool:
        with self._lock:
            return sid in self._ids


class Ledger:
    """The uploads Streamlit holds, as far as this server let them in: (session, file) -> (when, bytes)."""

    def __init__(self):
        self.files: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()
        self.sending: dict[str, int] = {}
        self.lock = threading.Lock()

    def kept(self, sid: str, fid: str, manager) -> None:
        """A file Streamlit has just stored: noted, then the oldest uploads let go until the caps hold."""
        stored = manager.get_files(sid, [fid]) if manager is not None else []
        with self.lock:
            if stored:  # its bytes, its name and what Streamlit keeps beside them: empty files are not free
                self.files[(sid, fid)] = (time.monotonic(), len(stored[0].data) + len(stored[0].name) + RECORD)
            released = self._over_caps(sid, fid, manager)
        for other_sid, other_fid in released:
            manager.remove_file(other_sid, other_fid)

    def _over_caps(self, sid: str, fid: str, manager) -> list[tuple[str, str]]:
        per, total = limits()
        if manager is not None:  # files Streamlit let go itself (a closed session): forgotten here too
            gone = [k for k in self.files if not manager.get_files(k[0], [k[1]])]
            for k in gone:
                self.files.pop(k)
        released = []
        for scope, cap in ((sid, per), (None, total)):
            mine = [k for k in self.files if scope is None or k[0] == scope]
            size = sum(self.files[k][1] for k in mine)
            for k in mine:  # oldest first; the file just stored stays
                if size <= cap or k == (sid, fid):
                    continue
                size -= self.files.pop(k)[1]
                released.append(k)
        return released

    def removed(self, sid: str, fid: str) -> None:
        with self.lock:
            self.files.pop((sid, fid), None)

    def start(self, sid: str) -> bool:
        with self.lock:
            if self.sending.get(sid, 0) >= IN_FLIGHT:
                return False
            self.sending[sid] = self.sending.get(sid, 0) + 1
            return True

    def end(self, sid: str) -> None:
        with self.lock:
            self.sending[sid] -= 1
            if not self.sending[sid]:
                del self.sending[sid]

    def held(self, sid: str | None = None) -> int:
        """Bytes of uploads held, by one session or by all."""
        with self.lock:
            return sum(size for (s, _), (_, size) in self.files.items() if sid is None or s == sid)


SIGNED_IN = Sessions()
LEDGER = Ledger()


def signed_in(allowed: bool) -> None:
    """What the gate decided for this script run's session: its uploads are kept from now on, or no longer."""
    sid = compat.session_id()
    if sid is not None:
        (SIGNED_IN.add if allowed else SIGNED_IN.discard)(sid)


class UploadGuard:
    """ASGI middleware in front of Streamlit's upload and metrics routes (serve.py adds it)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope.get("path", ""), scope.get("method", "")
        upload = UPLOAD.search(path)
        if METRICS.search(path) and not metrics_allowed(scope):
            await _answer(send, 401, b"the metrics of a shared nnapp need its password", basic=True)
        elif upload and method == "PUT":
            await self._put(upload[1], upload[2], scope, receive, send)
        elif upload and method == "DELETE":
            await self.app(scope, receive, send)
            LEDGER.removed(upload[1], upload[2])
        else:
            await self.app(scope, receive, send)

    async def _put(self, sid: str, fid: str, scope, receive, send) -> None:
        if sid not in SIGNED_IN:  # its file is refused before a byte of it is read
            await _answer(send, 403, b"sign in first")
            return
        if not LEDGER.start(sid):
            await _answer(send, 429, b"one upload at a time")
            return
        status = {}

        async def noted(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            LEDGER.end(sid)
        if status.get("code") in (200, 204):
            LEDGER.kept(sid, fid, compat.upload_manager())


def metrics_allowed(scope) -> bool:
    """Anyone may read a local server's metrics; a shared one's need its password (HTTP Basic, any user name)."""
    from ui import configured_password, is_shared  # lazily: ui imports this module's neighbours

    if not is_shared():
        return True
    password = configured_password()
    header = dict(scope.get("headers") or []).get(b"authorization", b"")
    if password is None or not header.lower().startswith(b"basic "):
        return False
    try:
        _, _, given = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return hmac.compare_digest(given.encode(), password.encode())


async def _answer(send, status: int, body: bytes, basic: bool = False) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    if basic:
        headers.append((b"www-authenticate", b'Basic realm="nnapp"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def held() -> int:
    """Bytes of uploads this server holds (for the Reliability tests and bench section 18c)."""
    return LEDGER.held()
