"""A training run's progress and curves as the Train page polls them, without rerunning the page.

While a run trains, the page does not rerun (each rerun redraws the page in the browser): served by
serve.py, the page's curves component fetches `PATH?run=KEY&token=T` each second and
redraws its bar and canvas; it asks Streamlit for one rerun when the run has ended. Served as a plain
`streamlit run app.py` (or in AppTest) the route does not exist and the page refreshes as before.

While the run's first step or its end is near (`soon`), the page asks with `&since=SIG&wait=1` instead, and
the route holds the answer until the run's stage (SIG: its status, phase and whether it has a step) has
changed or HOLD seconds have passed: the result shows when it is stored, not up to a poll's interval later.
A held request looks at the store's files every CHECK seconds (a stat, no query) and reads it when they change.

The token is an HMAC of the run's key and the password under this server's cookie secret: only a page
this server drew, behind its password gate, can read a run's progress through the route.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time

from nnapp.charts import runs as charts
from nnapp.engine.records import Run, base_key
from nnapp.engine.states import Status
from nnapp.store.store import Store

PATH = "/_nnapp/live"  # under server.baseUrlPath, as the page's relative fetch finds it (route_path)
MOUNTED_ENV = "NNAPP_LIVE_ROUTE"  # set by serve.py in the server's process: the route is there
POINTS = 300  # per-step points in a live curve
SOON = 1.5  # seconds of ETA under which the page's polls are held for the run's next stage (payload_after)
HOLD = 0.5  # seconds a held poll waits at most: the bar still moves twice a second meanwhile
CHECK = 0.02  # seconds between a held poll's looks at the store's files


def route_path() -> str:
    """PATH under this server's server.baseUrlPath: Streamlit mounts an App's own routes as given."""
    from streamlit import config

    base = str(config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}{PATH}" if base else PATH


def mounted() -> bool:
    """Whether this server answers PATH (serve.py mounted it)."""
    return os.environ.get(MOUNTED_ENV) == PATH


def _secret() -> bytes:
    from streamlit import config  # the cookie secret: random per server process unless set, stable over reruns

    return str(config.get_option("server.cookieSecret")).encode()


def token(key: str) -> str:
    """The token a page needs to read run `key` through the route; a new password makes new tokens."""
    from ui import configured_password

    password = hashlib.sha256((configured_password() or "").encode()).hexdigest()
    return hmac.new(_secret(), f"live:{password}:{key}".encode(), hashlib.sha256).hexdigest()[:32]


def progress_text(run: Run) -> tuple[float, str]:
    """A run's progress bar: the fraction done and its line ("training · epoch 1/2 · step 5/20 · ...")."""
    p = run.progress or {}
    if not p:
        return 0.0, "loading data and building the model…" if run.status == Status.RUNNING else run.status
    done = p["step"] / max(p["total_steps"], 1)
    where = f"epoch {p['epoch']}/{p['epochs']} · step {p['step']}/{p['total_steps']}"
    if not run.is_active():
        return min(done, 1.0), f"{run.status} at {where}"
    eta = f" · ETA {p['eta']:.0f}s" if p.get("eta") is not None else ""
    rate = f" · {p['samples_per_s']:,.0f} samples/s" if p.get("samples_per_s") else ""
    return min(done, 1.0), f"{p['phase']} · {where}{rate}{eta}"


def bar(run: Run) -> dict:
    """The component's progress bar for `run`: its status, the fraction done, its line, and whether its first
    step or its end is near (the page then polls more often)."""
    done, text = progress_text(run)
    eta = (run.progress or {}).get("eta")
    soon = not run.progress or (eta is not None and eta < SOON)
    return {"status": run.status, "done": done, "text": text, "soon": soon, "sig": stage(run)}


def stage(run: Run) -> str:
    """The run's stage as a held poll watches it: its status, phase and whether it has made a step."""
    p = run.progress or {}
    return f"{run.status}:{p.get('phase', '')}:{int(bool(p.get('step')))}"


def curves(store: Store, run: Run | None, points: int) -> tuple[dict, float, str | None]:
    """A run's curve series (charts.curve_series), the x axis' end in epochs, and the note over an empty chart."""
    steps = store.steps(run.key, max_rows=points) if run else []
    if not steps:
        note = "its loss and accuracy are drawn here as it trains" if run else "launch a run: its curves are drawn here"
        return charts.curve_series([], [], 1), run.config.epochs if run else 1, note
    config = run.config
    series = charts.curve_series(steps, store.epochs(run.key), config.steps_per_epoch(), config.label_smoothing)
    x_max = config.epochs if run.is_active() else max(series["step_x"][-1], *series["epoch_x"], 1e-9)
    return series, x_max, None


def record(store: Store, key: str) -> Run | None:
    """Run `key`'s record; a retrain that succeeded has become its run."""
    return store.get(key) or store.get(base_key(key))


def payload(store: Store, key: str) -> dict:
    """What the route answers for run `key`: whether it still trains, its bar, and its curves."""
    run = record(store, key)
    if run is not None and run.status == Status.RUNNING and not run.is_live():  # its process died unseen
        store.mark_interrupted()
        run = store.get(run.key)
    if run is None or run.config is None:
        return {"active": False}
    series, x_max, note = curves(store, run, POINTS)
    return {"active": run.is_active(), **bar(run), "data": {**series, "x_max": x_max, "note": note}}


def payload_after(store: Store, key: str, since: str, hold: float) -> dict:
    """payload(), once the run's stage differs from `since` or `hold` seconds have passed. Meanwhile only the
    run's record is read, and only when the store's files have changed."""
    deadline, stamp = time.monotonic() + hold, _stamp(store)  # stamped first: a write during payload() is seen
    body = payload(store, key)
    if body.get("sig") != since or hold <= 0:
        return body
    while time.monotonic() < deadline:
        time.sleep(CHECK)
        if (now := _stamp(store)) == stamp:
            continue
        stamp = now
        run = record(store, key)
        if run is None or run.config is None or stage(run) != since:
            break
    return payload(store, key)  # the stage it moved on to, or, held to the end, the bar as it is now


def _stamp(store: Store) -> tuple:
    """What changes when the store is written: its database's files' sizes and times (WAL mode writes the -wal file)."""
    out = []
    for suffix in ("", "-wal"):
        try:
            st = os.stat(f"{store.database.path}{suffix}")
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


_stores: dict[str, Store] = {}


def endpoint(request):
    """GET PATH?run=KEY&token=T[&since=SIG&wait=1]: payload() as JSON (held for a change of stage with `wait`:
    payload_after), or 403 for a wrong token and 400 without a key. Starlette runs it in its thread pool."""
    from starlette.responses import Response

    from nnapp.store.store import default_home

    key, given = request.query_params.get("run", ""), request.query_params.get("token", "")
    if not key or len(key) > 200:
        return Response("run= is needed", status_code=400)
    if not hmac.compare_digest(given.encode(), token(key).encode()):
        return Response("forbidden", status_code=403)
    home = str(default_home().resolve())
    try:
        store = _stores.get(home) or _stores.setdefault(home, Store(home))
        since = request.query_params.get("since", "")[:100]
        hold = HOLD if request.query_params.get("wait") and since else 0.0
        body = json.dumps(payload_after(store, key, since, hold), allow_nan=False)
    except Exception as err:  # a damaged or read-only store: the page reruns and says what it is
        body = json.dumps({"active": False, "error": type(err).__name__})
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})
