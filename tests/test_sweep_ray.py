"""The distributed path on one machine: a two-node Ray cluster, every socket on loopback, nothing left behind.

The cluster runs in a process of its own (tests/ray_cluster_sweep.py). As root it runs in a private network
namespace (`unshare -n`, only `lo` in it); otherwise Ray is told to use 127.0.0.1 (node_ip_address, and
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which makes it take the loopback address as the node's). Either way the
test checks that every socket the cluster listened on was a loopback one.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from nnapp.store.store import Store
from nnapp.sweep.study import read_study, trial_run

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "ray_cluster_sweep.py"
LOOPBACK = ("127.", "::1:", "::ffff:127.")


def private_network() -> list[str]:
    """The command prefix that runs a process with only a loopback interface, where this user may."""
    if os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip"):
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
        if probe.returncode == 0:
            return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']
    return []


def ray_processes(tmp: str) -> list[psutil.Process]:
    """Processes of this test's cluster: their command lines name its private temporary folder."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if any(tmp in part for part in p.info["cmdline"] or ()):
            found.append(p)
    return found


@pytest.fixture
def ray_tmp():
    """A short private RAY_TMPDIR (Ray's socket paths must stay short); anything left in it is ended after."""
    tmp = tempfile.mkdtemp(prefix="nnray-")
    yield tmp
    leftovers = ray_processes(tmp)
    for p in leftovers:
        p.kill()
    shutil.rmtree(tmp, ignore_errors=True)
    assert not leftovers, f"Ray processes outlived the test: {[p.pid for p in leftovers]}"


def test_a_sweep_on_a_two_node_ray_cluster(home, ray_tmp):
    report = Path(ray_tmp) / "report.json"
    env = {
        **os.environ,
        "NNAPP_HOME": str(home),
        "RAY_TMPDIR": ray_tmp,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "PYTHONPATH": str(ROOT),
    }
    cmd = [*private_network(), sys.executable, str(SCRIPT), str(home), str(report)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=500)
    assert proc.returncode == 0 and report.exists(), proc.stdout[-3000:] + proc.stderr[-5000:]
    result = json.loads(report.read_text())
    assert result["code"] == 0, proc.stdout[-3000:]
    assert result["sockets"] and all(s.startswith(LOOPBACK) for s in result["sockets"]), result["sockets"]
    assert not [pid for pid in result["pids"] if psutil.pid_exists(pid) and pid != proc.pid], "cluster processes left"

    store = Store(home)
    trials = read_study(home, "ray-four").trials
    runs = [store.get(trial_run(t)["key"]) for t in trials]
    assert len(runs) == 4 and all(r.status == "done" and r.has_weights() for r in runs), [r.status for r in runs]
    for run in runs:  # the weights the driver received and wrote pass their checksum
        assert store.load_weights(run.key)
    nodes = {trial_run(t)["node"] for t in trials}
    assert len(nodes) == 2, nodes  # one CPU per node, two trials at a time: both nodes trained
    assert "4 of 4 trials ended" in proc.stdout and proc.stdout.count("trial ") >= 4

    pruning = read_study(home, "ray-pruning").trials
    assert [trial_run(t)["source"] for t in pruning] == ["cached", "cached", "trained"]
    bad = store.get(trial_run(pruning[2])["key"])
    assert (pruning[2].state.name, bad.status, bad.config.lr) == ("PRUNED", "pruned", 10.0)
    assert len(store.epochs(bad.key)) == 1 and not bad.has_weights()  # its first epoch's curves, streamed back
