"""The app served on loopback for the browser tests and benchmarks/app_timing.py: `streamlit run serve.py`
on a free port, and the Chromium the tests drive."""

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def context_switches(pid: int) -> int:
    """Voluntary and involuntary context switches of every thread of process `pid` so far (Linux's /proc; a
    process's own status file counts its first thread only)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/status") as f:  # a thread may end meanwhile
            total += sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
    return total


@contextlib.contextmanager
def serve(home: Path | str, address: str = "127.0.0.1", env: dict | None = None, script: str = "serve.py", prefix: tuple = ()):
    """`streamlit run serve.py` (or `script`) on a free port over the store in `home`; yields its URL once it answers.
    `prefix` goes before the command (e.g. ("taskset", "-c", "0") to keep the server on CPU 0).
    Its output goes to a file (a pipe nobody reads would stall the server once full), shown if it fails.
    A server that does not stop within 30 s of SIGTERM is killed and said on stderr: it happens now and
    then after the browser's sweep test and in benchmarks (it prints "Stopping..." and hangs; cause not
    proven: Streamlit runs uvicorn with no timeout_graceful_shutdown, so one connection that does not close
    holds the stop for ever), and must neither fail the tests that passed nor lose a benchmark's tables."""
    port = free_port()
    cmd = [*prefix, sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port), "--server.headless", "true"]
    cmd += ["--server.address", address]
    env = {**os.environ, "NNAPP_HOME": str(home), **(env or {})}
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            proc.kill()
            log.seek(0)
            raise RuntimeError("streamlit did not start:\n" + log.read().decode(errors="replace"))
        try:
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                log.seek(0)
                message = "streamlit did not stop within 30 s of SIGTERM; killed. Its output's end:\n"
                print(message + log.read().decode(errors="replace")[-2000:], file=sys.stderr)
