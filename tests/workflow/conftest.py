"""Fixtures of the workflow tests: the repository and a Snakemake command bound to this venv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch copy of the workflow (Snakefile, workflow/, config/, scripts/) to run in."""
    for name in ("Snakefile", "workflow", "config", "scripts"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, symlinks=True)
        else:
            shutil.copy2(src, tmp_path / name)
    return tmp_path
