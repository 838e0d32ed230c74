"""Streamlit helpers shared by the pages: the page registry, the process-wide store and job manager, pickers."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
import urllib.parse
from dataclasses import dataclass

import numpy as np
import streamlit as st

from nnapp.engine import datasets
from nnapp.engine.config import RunConfig
from nnapp.engine.data import test_set
from nnapp.engine.device import set_threads
from nnapp.engine.names import default_name
from nnapp.engine.people import NAME_MAX, BadName, clean_name, machine_user, usable
from nnapp.engine.records import Run
from nnapp.engine.states import TaskKind
from nnapp.jobs.manager import JobManager
from nnapp.predict import ood
from nnapp.store.labels import Labels
from nnapp.store.store import Store, default_home

# Plotly charts without their toolbar: on a phone it ran over their titles (drag still zooms, a double click resets).
QUIET = {"displayModeBar": False}
CHART_STEPS = 800  # per-step points drawn in a curve; longer runs are thinned evenly
PASSWORD_ENV = "NNAPP_PASSWORD"  # or `password = "..."` in .streamlit/secrets.toml
MIN_PASSWORD = 8
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class PageSpec:
    path: str  # in views/, not pages/: see the README
    title: str
    icon: str
    default: bool = False
    hidden: bool = False  # not in the navigation: reached by its link alone, and shown without the sidebar


# The one list of pages: app.py's navigation, every switch and link, and the tests read it.
PAGES = {
    "home": PageSpec("views/home.py", "Home", ":material/home:", default=True),
    "train": PageSpec("views/train.py", "Train", ":material/model_training:"),
    "data": PageSpec("views/data.py", "Data", ":material/category:"),
    "sweep": PageSpec("views/sweep.py", "Sweep", ":material/tune:"),
    "results": PageSpec("views/results.py", "Results", ":material/monitoring:"),
    "compare": PageSpec("views/compare.py", "Compare", ":material/compare_arrows:"),
    "playground": PageSpec("views/playground.py", "Playground", ":material/draw:"),
    "room": PageSpec("views/room.py", "Room", ":material/groups:"),
    "draw": PageSpec("views/draw.py", "Draw", ":material/gesture:", hidden=True),  # the Room's audience view
}


def navigation() -> list[st.Page]:
    return [
        st.Page(p.path, title=p.title, icon=p.icon, default=p.default, visibility="hidden" if p.hidden else "visible")
        for p in PAGES.values()
    ]


def url_path(name: str) -> str:
    """The page's path in the address bar (st.Page's, from its file name)."""
    return PAGES[name].path.rsplit("/", 1)[-1].removesuffix(".py")


def navigation_position(allowed: bool) -> str:
    """The sidebar's navigation for a signed-in session, none on a hidden page (the audience's view shows
    nothing but its canvas and answer) or before signing in."""
    hidden = {url_path(name) for name, p in PAGES.items() if p.hidden}
    try:
        here = urllib.parse.urlparse(st.context.url or "").path.rstrip("/").rsplit("/", 1)[-1]
    except Exception:  # no request context (a bare script run)
        here = ""
    return "sidebar" if allowed and here not in hidden else "hidden"


def on_hidden_page() -> bool:
    return navigation_position(True) == "hidden"


def page_link(name: str) -> None:
    page = PAGES[name]
    st.page_link(page.path, label=f"Go to {page.title}", icon=page.icon)


def configured_password() -> str | None:
    """The password of this server: NNAPP_PASSWORD, else `password` in Streamlit's secrets; None when neither is set."""
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    try:
        value = st.secrets.get("password")
    except Exception:  # no secrets file, or one that does not parse: no password from there
        return None
    return value if isinstance(value, str) and value else None


def is_shared() -> bool:
    """Whether the server listens beyond this machine: server.address unset (all interfaces) or not a loopback one."""
    return st.get_option("server.address") not in LOOPBACK


def gate() -> bool:
    """Whether this browser session may see the app; app.py runs no page until it says yes.

    Shared on a network, the server needs a password and shows the browser no error details; a password
    set on a local server is asked for too. The typed password is compared in constant time.
    """
    shared, password = is_shared(), configured_password()
    if shared:
        st.set_option("client.showErrorDetails", "none")  # tracebacks name the server's files
    if password is None:
        if shared:
            st.error(
                f"This nnapp server is open to the network without a password. Set {PASSWORD_ENV}, or `password` in "
                ".streamlit/secrets.toml, and start it again with ./run-app.sh --share."
            )
        return not shared
    if len(password) < MIN_PASSWORD:
        st.error(f"The password set for this server is shorter than {MIN_PASSWORD} characters; set a longer one and restart it.")
        return False
    signed_in = hashlib.sha256(password.encode()).hexdigest()  # a new password signs every session out
    if st.session_state.get("signed_in") == signed_in:
        return True
    return sign_in(password, signed_in)


def sign_in(password: str, token: str) -> bool:
    st.title("nnapp")
    with st.form("sign_in"):
        typed = st.text_input("Password", type="password", key="password")
        name = name_field()
        submitted = st.form_submit_button("Sign in")
    right = submitted and hmac.compare_digest(typed.encode(), password.encode())
    if right and sign_in_as(name):  # a name that cannot be one is said by sign_in_as
        st.session_state["signed_in"] = token
        st.rerun()
    if submitted and not right:
        time.sleep(1)  # each wrong guess costs a second
        st.error("Wrong password.")
    return False


# --- who: display names ------------------------------------------------------------------------------------

NAME_COOKIE = "nnapp_name"  # the browser remembers a session's display name for its next visit
REMEMBER_JS = """
export default function(component) {
  const name = component.data && component.data.name;
  if (name) document.cookie = `nnapp_name=${encodeURIComponent(name)}; path=/; max-age=31536000; SameSite=Lax`;
}
"""


def who() -> str:
    """The display name of this browser session: the one it signed in with on a server with a password, the
    machine's user on one without."""
    return st.session_state.get("display_name") or machine_user()


def remembered_name() -> str:
    """The name this browser used last time (its cookie), or ""."""
    try:
        raw = urllib.parse.unquote(st.context.cookies.get(NAME_COOKIE) or "")
    except Exception:  # no request context (a bare script run)
        return ""
    return clean_name(raw) if usable(raw) else ""


def name_field() -> str:
    return st.text_input(
        "Your name",
        value=remembered_name(),
        max_chars=NAME_MAX,
        key="sign_in_name",
        help="Shown beside what you launch, sweep and draw. This browser remembers it; change it in the sidebar.",
    )


def sign_in_as(typed: str) -> bool:
    """Take `typed` as this session's display name (left empty: a guest's name); False, saying why, when it
    cannot be one."""
    if not typed.strip():
        typed = f"guest {hashlib.sha256(os.urandom(8)).hexdigest()[:4]}"
    try:
        st.session_state["display_name"] = clean_name(typed)
    except BadName as err:
        st.error(str(err))
        return False
    st.session_state["remember_name"] = True
    return True


@st.cache_resource
def _name_cookie():
    return st.components.v2.component("nnapp_name_cookie", js=REMEMBER_JS, html="<span></span>")


def name_ui() -> None:
    """In the sidebar: who this session is, and a way to change it (only on a server with a password: without
    one, everyone is the machine's user)."""
    if configured_password() is None:
        return
    if st.session_state.pop("remember_name", False):  # an empty element whose script sets the cookie
        _name_cookie()(data={"name": who()}, key="name_cookie", width="content", height="content")
    if on_hidden_page():  # the audience's page shows nothing else
        return
    with st.sidebar:
        st.caption(f"Signed in as **{escaped(who())}**")
        with st.popover("Change name", width="stretch"):
            typed = st.text_input("Your name", value=who(), max_chars=NAME_MAX, key="new_name")
            if st.button("Save", key="save_name") and sign_in_as(typed):
                st.rerun()


def may_touch(owner: str | None) -> bool:
    """Whether this session may cancel or delete something of `owner`'s without more ado: its own, or anything
    on a server without a password (whoever uses it is the machine's user, the host)."""
    return configured_password() is None or (owner is not None and owner == who())


def guarded(action: str, owner: str | None, clicked: bool, what: str) -> bool:
    """Whether to do `action` (a cancel, a delete) on something of `owner`'s now: at the click for one's own;
    for someone else's the click opens a password field under it, and the action happens once the server's
    password is typed again (the host's right)."""
    pending = st.session_state.setdefault("host_pending", [])
    if clicked and may_touch(owner):
        return True
    if clicked and action not in pending:
        pending.append(action)
    if action in pending and host_form(action, what, owner):
        pending.remove(action)
        return True
    return False


def host_form(action: str, what: str, owner: str | None) -> bool:
    """A form asking for the server's password to act on someone else's `what`; True on the run it was typed right."""
    with st.form(f"host_{action}"):
        st.caption(f"{what} belongs to {escaped(owner or 'nobody')}: the server's password lets the host do it.")
        typed = st.text_input("Server password", type="password", key=f"host_password_{action}")
        confirmed = st.form_submit_button("Confirm with the password")
    if confirmed and hmac.compare_digest(typed.encode(), (configured_password() or "").encode()):
        return True
    if confirmed:
        time.sleep(1)  # as at sign-in: each wrong guess costs a second
        st.error("Wrong password.")
    return False


@st.cache_resource
def configure_process() -> None:
    """Once per server process. Training runs in processes of its own, so this one only ever predicts
    one digit at a time; Streamlit runs each rerun in a fresh thread, and a fresh thread's first
    multi-threaded torch op starts a new OpenMP team, every time. One thread is also the fastest for one digit."""
    set_threads(1)


@st.cache_resource
def _store(home: str) -> Store:
    return Store(home)


@st.cache_resource
def _jobs(home: str) -> JobManager:
    return JobManager(_store(home))


@st.cache_resource
def _sweeps(home: str) -> JobManager:
    return JobManager(_store(home))


def store() -> Store:
    """The run store under NNAPP_HOME (./runs by default), one per process."""
    return _store(str(default_home().resolve()))


def jobs() -> JobManager:
    """The process-wide job manager: every browser tab shares it."""
    return _jobs(str(default_home().resolve()))


def sweeps() -> JobManager:
    """The job manager of sweep drivers, one at a time, each a process of its own that runs its trials in
    processes of their own: a sweep never holds up the Train page's queue, and reruns never touch it."""
    return _sweeps(str(default_home().resolve()))


@st.cache_data(show_spinner="Loading the data set…", max_entries=3)
def _test_images(dataset: str, val_fraction: float, seed: int, subset: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = test_set(dataset, val_fraction, seed, subset)
    return shown_images(x.numpy()), y.numpy()


def test_images(config: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    """The test images a run was scored on (uint8, as st.image shows them) and their labels, for galleries:
    a data set's own test set, or the share of one of yours its split held out."""
    if datasets.find(config.dataset) is None or not datasets.find(config.dataset).own:
        return _test_images(config.dataset, 0.1, 0, 0)  # the same test set whatever the split: cached once
    return _test_images(config.dataset, config.val_fraction, config.seed, config.train_subset)


def shown_images(x: np.ndarray) -> np.ndarray:
    """uint8 images in the store's layout (N×H×W grey, N×3×H×W colour) as st.image takes them (N×H×W×3)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x


def runs_or_hint(hint: str) -> list[Run]:
    """Every stored run, newest first; with none, the hint and a link to the Train page."""
    runs = store().runs()
    if not runs:
        st.info(hint)
        page_link("train")
    return runs


def class_names(dataset: str) -> list[str]:
    spec = datasets.find(dataset)
    return list(spec.classes) if spec is not None else [str(i) for i in range(10)]


MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$&])")
WORD_JOINER = "\u2060"  # invisible: it keeps "https://", "www." and "a@b" from being found as links
AUTOLINK = re.compile(r"(www)(?=\\\.)|(\\:)(?=/)|((?:mailto|xmpp)\\:)|(?=@)", re.IGNORECASE)  # after escaping


def escaped(value: object) -> str:
    """`value` as text inside Markdown that Streamlit renders (st.markdown, st.caption, st.info, labels):
    every character Markdown, HTML or Streamlit's own directives (:red[...], :material/...:, $...$) would
    read is escaped, and line breaks become spaces. Bare addresses (https://..., www...., a@b.c), which
    GitHub-flavoured Markdown links after escapes are read, get an invisible word joiner. Every string that
    comes from a bundle, an upload, a sweep name or another person goes through this (or st.text / st.code)
    before it is drawn."""
    text = MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(value).splitlines()))
    return AUTOLINK.sub(lambda m: m[0] + WORD_JOINER, text)


def ago(t: float | None) -> str:
    if not t or not 0 < t < 2**33:  # a damaged row's time: not worth a traceback
        return "-"
    s = time.time() - t
    if s < 60:
        return f"{s:.0f}s ago"
    if s < 3600:
        return f"{s / 60:.0f} min ago"
    if s < 86400:
        return f"{s / 3600:.1f} h ago"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def pick_linked_run(
    runs: list[Run], key: str, asked: str, fallback: str, label: str = "Run", missing: str = "There is no run {} here."
) -> Run:
    """A run picker that links work with: the run another page asked for (session state `asked`), else the one
    the address names (?run=KEY, a link a teammate sent), else the one picked before, else `fallback`. The
    address then names the run shown, so it can be copied and sent on."""
    link = st.query_params.get("run")
    followed = f"{key}_link"  # the address this page last wrote: a rerun must not undo a pick made since
    wanted = st.session_state.pop(asked, None) or (link if link != st.session_state.get(followed) else None)
    if wanted is not None and wanted not in {r.key for r in runs}:  # the address is anyone's text: shown as text
        st.warning(missing.format(f"`{wanted[:40]}`" if wanted[:40].isalnum() else escaped(wanted[:40])))
    elif wanted is not None:
        st.session_state[key] = wanted
    run = pick_run(runs, key, label=label, default=fallback)
    if link != run.key:  # only a change is sent to the browser
        st.query_params["run"] = run.key
    st.session_state[followed] = run.key
    return run


def pick_run(runs: list[Run], key: str, label: str = "Run", default: str | None = None) -> Run | None:
    """A selectbox over runs by name; `default` is a run key to preselect."""
    if not runs:
        return None
    keys = [r.key for r in runs]
    index = keys.index(default) if default in keys else 0
    by_key, names = {r.key: r for r in runs}, store().all_labels()
    chosen = st.selectbox(label, keys, index=index, format_func=lambda k: run_title(by_key[k], names), key=key)
    return by_key[chosen]


def run_name(run: Run, labels: dict[str, Labels] | None = None) -> str:
    """The name a person reads: the one given to the run, else one made from what sets its config apart.
    User text: shown through escaped() or as text."""
    given = (labels if labels is not None else store().all_labels()).get(run.key, Labels()).name
    if given:
        return given
    return default_name(run.config) if run.config is not None else f"unreadable {run.key[:16]}"


def run_title(run: Run, labels: dict[str, Labels] | None = None) -> str:
    """'✓ cnn 16-32 · lr 0.01 · 1 ep · 99.23% · ada': a run in a picker, with who launched it (plain text, not Markdown)."""
    if run.is_unreadable():
        return run.label()
    acc = f" · {run.accuracy * 100:.2f}%" if run.accuracy is not None else ""
    owner = f" · {run.owner}" if run.owner else ""
    return f"{run.icon} {run_name(run, labels)}{acc}{owner}"


def stopped_text(store: Store, run: Run) -> str:
    """What a cancelled or pruned run is, in words: stopped where, and what it had learned by then."""
    p, epochs = run.progress or {}, store.epochs(run.key)
    where = f" at step {p['step']} of {p['total_steps']}" if p.get("total_steps") else ""
    how = "was stopped by its sweep's pruner" if run.is_partial() else "was cancelled"
    last = next((e for e in reversed(epochs) if e.get("val_acc") is not None), None)
    learned = f"; after epoch {last['epoch']} it read {last['val_acc']:.1%} of its validation images right" if last else ""
    if last is None and (steps := [s for s in store.steps(run.key, max_rows=20) if s.get("acc") is not None]):
        learned = f"; its last training batches were {steps[-1]['acc']:.0%} right"
    return f"This run {how}{where}{learned}. Its curves so far are kept; it has no test score or weights."


def search_runs(runs: list[Run], words: str, labels: dict[str, Labels]) -> list[Run]:
    """The runs whose name, notes, tags, key or config description hold every word of `words`."""
    if not words.strip():
        return runs
    found = []
    for run in runs:
        mine = labels.get(run.key, Labels())
        described = " ".join([run_name(run, labels), run.key, run.config.describe() if run.config else "", str(run.status)])
        if Labels(described, mine.notes, mine.tags).matches(words):
            found.append(run)
    return found


def open_results(key: str) -> None:
    st.session_state["results_run"] = key
    st.switch_page(PAGES["results"].path)


def open_playground(key: str) -> None:
    st.session_state["playground_run"] = key
    st.switch_page(PAGES["playground"].path)


def open_train(watch: str | None = None) -> None:
    if watch:
        st.session_state["watch_run"] = watch
    st.switch_page(PAGES["train"].path)


@st.cache_resource
def _checks() -> dict:
    """Per process: not-a-digit checks loaded, by (store, key, weights checksum)."""
    return {}


def not_digit_check(run: Run) -> dict | str | None:
    """The run's not-a-digit check (nnapp.ood); a sentence while it is being made, or why there is none;
    None for a run that cannot have one. A missing check is made by a background job: no page waits."""
    if not run.has_weights() or not ood.available(run.config):
        return None
    checks, key = _checks(), (str(store().home), run.key, run.weights_sha256)
    if key in checks:
        return checks[key]
    stats = ood.load_stats(store(), run.key)
    if stats is not None:
        checks[key] = stats
        return stats
    if store().readonly:  # nothing can be written down, so no job is asked for it
        return "This run has no not-a-digit check, and none is made here: the run store is read-only."
    task = store().tasks.get(ood.task_key(run))
    if task is not None and task.is_problem():
        return f"The not-a-digit check could not be made: {escaped(task.message)}."
    if task is None or task.is_done():  # never asked for, or made and gone since (its file was deleted)
        jobs().submit_task(TaskKind.NOT_A_DIGIT, ood.task_key(run), {"key": run.key}, force=True, owner=who())
    return "The not-a-digit check for this run is being made (once per run, a few seconds on a CPU)."


def selected_points(event) -> list[dict]:
    """The points a click or lasso picked in an st.plotly_chart(on_select="rerun"), as dicts."""
    if isinstance(event, dict):
        return event.get("selection", {}).get("points", [])
    return list(getattr(getattr(event, "selection", None), "points", None) or [])
