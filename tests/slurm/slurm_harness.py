"""Helpers to drive Snakemake through the test cluster and to read back what SLURM ran.

The test node has no GPUs, so :func:`cpu_overrides` turns the profile's GPU requests into CPU ones sized for it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.yaml"

# Resource keys that only make sense on a GPU partition of a real site.
SITE_KEYS = ("gpu", "gpus", "gpu_model", "gres", "cpus_per_gpu", "slurm_partition", "slurm_account")
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
RUN_ID = re.compile(r"SLURM run ID: (\S+)")


@dataclass(frozen=True)
class Cluster:
    """The running cluster: its single node's size and how long ``cluster.sh start`` took."""

    node: str
    cpus: int
    real_memory_mb: int
    start_wall_s: float


def node_info() -> tuple[str, int, int]:
    out = subprocess.run(["scontrol", "show", "node", "-o"], capture_output=True, text=True, check=True).stdout
    fields = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
    return fields["NodeName"], int(fields["CPUTot"]), int(fields["RealMemory"])


def cpu_overrides(cluster: Cluster, cores: int | None = None, profile: Path = PROFILE) -> list[str]:
    """Command-line options that fit the profile's requests onto the test node.

    A command-line option replaces the profile's key as a whole, so every ``set-resources`` entry of the profile is
    repeated here minus the GPU and site keys, with ``mem_mb`` capped at a quarter of the node. ``--cores`` (default:
    the node's CPUs) caps every rule's threads, and keeps a group of MD runs one run wide.
    """
    settings = yaml.safe_load(profile.read_text())
    mem_cap = max(500, cluster.real_memory_mb // 4)
    entries = []
    for rule, resources in settings.get("set-resources", {}).items():
        for key, value in resources.items():
            if key in SITE_KEYS:
                continue
            if key == "mem_mb":
                value = min(int(value), mem_cap)
            entries.append(f"{rule}:{key}={value}")
    defaults = [
        f"{key}={min(int(value), mem_cap) if key == 'mem_mb' else value}"
        for key, value in settings.get("default-resources", {}).items()
        if key not in SITE_KEYS
    ]
    return [
        "--cores", str(cores or cluster.cpus),
        "--set-resources", *entries,
        "--default-resources", *defaults,
        # poll squeue every few seconds instead of the plugin's 40 s start
        "--slurm-init-seconds-before-status-checks", "2",
        "--seconds-between-status-checks", "2",
    ]  # fmt: skip


def venv_env() -> dict[str, str]:
    """The environment for Snakemake and, through ``sbatch --export=ALL``, for every job: the venv's bin first."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for key in [k for k in env if k.startswith("SLURM_")]:  # a test run inside an allocation
        del env[key]
    return env


@dataclass(frozen=True)
class SnakemakeRun:
    returncode: int
    log: str
    wall_s: float
    run_id: str | None
    jobs: dict[str, str]  # SLURM job id -> the plugin's log path (rule_<name>/... or group_<id>_<rules>/...)


def run_snakemake(args: list[str], cwd: Path, timeout_s: float, env: dict[str, str] | None = None) -> SnakemakeRun:
    """Run ``python -m snakemake ARGS`` in ``cwd``; keep its output in ``cwd/snakemake.out``."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd,
        env=env or venv_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout_s,
    )
    wall_s = time.perf_counter() - t0
    (cwd / "snakemake.out").write_text(proc.stdout)
    run_id, jobs = parse_log(proc.stdout)
    return SnakemakeRun(returncode=proc.returncode, log=proc.stdout, wall_s=wall_s, run_id=run_id, jobs=jobs)


def parse_log(text: str) -> tuple[str | None, dict[str, str]]:
    """The executor's run id (every SLURM job's name) and SLURM job id -> plugin log path, from Snakemake's output."""
    run_id = RUN_ID.search(text)
    return run_id.group(1) if run_id else None, {m.group(1): m.group(2) for m in SUBMITTED.finditer(text)}


def slurm_job(job_id: str) -> dict[str, str]:
    """``scontrol show job`` as a dict (finished jobs stay visible for MinJobAge = 600 s)."""
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, check=True).stdout
    return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)


def jobs_of_run(run_id: str) -> dict[str, str]:
    """SLURM job id -> state for every job the executor submitted under this run id (its job name)."""
    out = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%T", "--name", run_id],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split("|", 1) for line in out.split())


def submitted_rules(jobs: dict[str, str]) -> dict[str, list[str]]:
    """``rule_<name>`` / ``group_<group>`` -> SLURM job ids, from the plugin's per-job log paths."""
    by_kind: dict[str, list[str]] = {}
    for job_id, path in jobs.items():
        part = next(part for part in Path(path).parts if part.startswith(("rule_", "group_")))
        # a group's folder is group_<group id>_<rules>; the group id is what the profile names
        kind = part if part.startswith("rule_") else "_".join(part.split("_")[:2])
        by_kind.setdefault(kind, []).append(job_id)
    return by_kind
