"""Helpers of the workflow tests: the repository, a Snakemake command bound to this venv, a scratch copy."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def snakemake_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_snakemake(*args: str, cwd: Path = REPO, check: bool = True, timeout: float = 600):
    """Run the real snakemake of this environment and return the completed process."""
    proc = subprocess.run(
        [str(SNAKEMAKE), *args],
        cwd=cwd,
        env=snakemake_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def copy_workflow(dest: Path) -> Path:
    """Copy what a campaign needs (Snakefile, workflow/, config/, scripts/, envs/) into ``dest``."""
    for name in ("Snakefile", "workflow", "config", "scripts", "envs"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, symlinks=True)
        else:
            shutil.copy2(src, dest / name)
    return dest


def job_counts(stdout: str) -> dict[str, int]:
    """The 'job  count' summary of a dry run as {rule: count}."""
    counts = {}
    for line in stdout.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts
