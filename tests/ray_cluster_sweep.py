"""Run by test_sweep_ray.py in a process of its own (in a private network namespace where it can be):
a two-node Ray cluster on loopback, sweeps on it, then the cluster shut down.

    python tests/ray_cluster_sweep.py HOME REPORT.json

1. `python -m nnapp sweep ... --ray ADDRESS`: 4 trials, 2 at a time (one CPU per node, so one trial per node).
2. A pruning sweep through the same driver: two of the first sweep's configs (replayed from the store, no
   training), then lr=10, which the median pruner stops after its first epoch on the cluster.
The report names the listening sockets and the processes the cluster had, for the test to check.
"""

import json
import socket
import sys
from pathlib import Path

import psutil
from ray.cluster_utils import Cluster

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nnapp.__main__ import main as cli  # noqa: E402
from nnapp.store.store import Store  # noqa: E402
from nnapp.sweep.cluster import RayExecutor  # noqa: E402
from nnapp.sweep.driver import Driver  # noqa: E402
from nnapp.sweep.files import load_spec  # noqa: E402
from nnapp.sweep.spec import SweepSpec, check, parse_param  # noqa: E402
from nnapp.sweep.study import open_study, read_study  # noqa: E402
from tests.conftest import TINY_SET  # noqa: E402

NODE = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": 80 * 1024 * 1024}


def listening(pids: set[int]) -> list[str]:
    """Local addresses of the TCP sockets these processes listen on and the UDP sockets they hold."""
    found = []
    for pid in pids:
        try:
            connections = psutil.Process(pid).net_connections(kind="inet")
        except psutil.NoSuchProcess:  # a worker that ended meanwhile
            continue
        found += [
            f"{c.laddr.ip}:{c.laddr.port}" for c in connections if c.status == psutil.CONN_LISTEN or c.type == socket.SOCK_DGRAM
        ]
    return found


def pruning_sweep(home: Path, address: str) -> None:
    """Two of the first sweep's trials again (cache hits), then lr=10: pruned on the cluster after epoch 1."""
    first = load_spec(home, "ray-four")
    lrs = [t.params["lr"] for t in read_study(home, "ray-four").trials][:2]
    params = (parse_param("lr=1e-4:10:log"),)
    spec = check(SweepSpec("ray-pruning", first.base, params, trials=3, sampler="random", pruner="median", ray=address))
    study = open_study(spec, home)
    for lr in [*lrs, 10.0]:
        study.enqueue_trial({"lr": lr})
    store = Store(home)
    Driver(spec, store, RayExecutor(spec, store)).run()


def main() -> int:
    home, report = Path(sys.argv[1]), Path(sys.argv[2])
    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    try:
        cluster.add_node(**NODE)
        cluster.wait_for_nodes()
        args = ["sweep", *TINY_SET, "--param", "lr=1e-3:1e-2:log", "--trials", "4", "--parallel", "2"]
        code = cli([*args, "--sampler", "random", "--name", "ray-four", "--ray", cluster.address])
        pruning_sweep(home, cluster.address)
        me = psutil.Process()
        pids = {me.pid, *(p.pid for p in me.children(recursive=True))}
        sockets = listening(pids)
    finally:
        cluster.shutdown()
    report.write_text(json.dumps({"code": code, "pids": sorted(pids), "sockets": sockets}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
