"""A live single-node SLURM cluster for the profile tests.

The session fixture runs ``tests/slurm/cluster.sh start`` (installs and starts munge, slurmctld and slurmd; needs
root) and, unless a cluster already answered before, ``cluster.sh stop`` at the end, which stops only the daemons
cluster.sh started. Where the cluster cannot run (not root, no apt-get, a daemon does not come up) every test using
it is skipped with cluster.sh's reason.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from slurm_harness import Cluster, node_info

CLUSTER_SH = Path(__file__).resolve().parent / "cluster.sh"

log = logging.getLogger(__name__)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Cluster]:
    """Start the cluster once per session (skip with cluster.sh's reason if it cannot run); stop it after."""
    was_up = _controller_answers()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(["bash", str(CLUSTER_SH), "start"], capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        pytest.skip("SLURM cluster unavailable: cluster.sh start took more than 900 s")
    start_wall_s = time.perf_counter() - t0
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        pytest.skip(f"SLURM cluster unavailable (cluster.sh exit {proc.returncode}): {lines[-1] if lines else '?'}")
    log.info("cluster.sh start took %.1f s\n%s", start_wall_s, proc.stderr)
    node, cpus, mem = node_info()
    try:
        yield Cluster(node=node, cpus=cpus, real_memory_mb=mem, start_wall_s=start_wall_s)
    finally:
        if not was_up:
            subprocess.run(["bash", str(CLUSTER_SH), "stop"], capture_output=True, text=True, timeout=120)


def _controller_answers() -> bool:
    try:
        proc = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return "is UP" in proc.stdout
