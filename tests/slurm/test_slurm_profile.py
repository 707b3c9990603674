"""The SLURM profile on a live cluster, with a campaign-shaped toy workflow (tests/slurm/toy/Snakefile).

One Snakemake run through ``--profile slurm`` checks what the profile promises:
- every non-local job goes through sbatch and completes;
- the four run_md jobs share one allocation (groups + group-components), sized one run wide (``cores``) and four
  runs long (runtime summed);
- a job requeued by SLURM (what preemption does with ``slurm-requeue``) comes back under the same job id and the
  training resumes from its checkpoint;
- a job cancelled outright is resubmitted by Snakemake (``retries``) and resumes from its checkpoint too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slurm_harness import (
    HERE,
    REPO,
    SUBMITTED,
    cpu_overrides,
    jobs_of_run,
    parse_log,
    slurm_job,
    submitted_rules,
    venv_env,
)

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

EPOCHS = 8
TIMEOUT_S = 600


def _wait_for(predicate, what: str, proc: subprocess.Popen, timeout_s: float = TIMEOUT_S):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"snakemake exited (rc {proc.returncode}) while waiting for {what}")
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


def _training_at_epoch(workdir: Path, out: Path, method: str, epoch: int) -> str | None:
    """The SLURM job id of the method's first training job once it has checkpointed ``epoch`` (and not finished)."""
    try:
        done = int((workdir / f"results/train/{method}/run/last.ckpt").read_text())
    except (FileNotFoundError, ValueError):
        return None
    if done < epoch or (workdir / f"results/train/{method}/model.txt").exists():
        return None
    ids = [m.group(1) for m in SUBMITTED.finditer(out.read_text()) if f"rule_train_model/{method}/" in m.group(2)]
    return ids[0] if ids else None


def _state(job_id: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout.strip()


def test_profile_on_live_cluster(slurm_cluster, tmp_path):
    shutil.copy(HERE / "toy" / "Snakefile", tmp_path / "Snakefile")
    out = tmp_path / "snakemake.out"
    # One CPU per job, so both trainings run at once on the 2-CPU test node.
    args = [
        "--profile", str(REPO / "slurm"),
        *cpu_overrides(slurm_cluster, cores=1),
        "--config", f"epochs={EPOCHS}", "epoch_s=1",
    ]  # fmt: skip
    t0 = time.perf_counter()
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "snakemake", *args],
            cwd=tmp_path,
            env=venv_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        requeued = _wait_for(lambda: _training_at_epoch(tmp_path, out, "baseline", 2), "baseline epoch 2", proc)
        cancelled = _wait_for(lambda: _training_at_epoch(tmp_path, out, "corr", 2), "corr epoch 2", proc)

        # Preemption with requeue: SLURM kills the running training and queues it again under the same id. It
        # would hold it for about two minutes; once it is pending again, let it start now.
        subprocess.run(["scontrol", "requeue", requeued], check=True)
        _wait_for(lambda: _state(requeued) == "PENDING", "the requeued job to pend", proc, timeout_s=60)
        subprocess.run(["scontrol", "update", f"jobid={requeued}", "StartTime=now"], check=True)

        # A job that ends CANCELLED: Snakemake resubmits it (retries) as a new SLURM job.
        subprocess.run(["scancel", cancelled], check=True)

        proc.wait(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)
    wall_s = time.perf_counter() - t0
    log = out.read_text()
    assert proc.returncode == 0, log[-4000:]
    assert (tmp_path / "results/tables/table2.csv").exists()

    run_id, jobs = parse_log(log)
    by_kind = submitted_rules(jobs)
    states = jobs_of_run(run_id)
    assert set(states) == set(jobs), (states, jobs)
    assert {state for job_id, state in states.items() if job_id != cancelled} == {"COMPLETED"}
    assert states[cancelled] == "CANCELLED"

    # Local rules never reach SLURM; everything else does.
    assert set(by_kind) == {"rule_make_reference_data", "rule_train_model", "group_md"}, by_kind

    # Requeued: one submission, restarted once by SLURM, resumed from the checkpoint.
    baseline = (tmp_path / "results/train/baseline/model.txt").read_text().split()
    assert baseline[0] == f"slurm_job={requeued}"
    assert int(baseline[1].split("=")[1]) >= 2
    assert slurm_job(requeued)["Restarts"] == "1"

    # Cancelled: resubmitted by Snakemake under a new id, resumed from the checkpoint.
    corr = (tmp_path / "results/train/corr/model.txt").read_text().split()
    assert corr[0] != f"slurm_job={cancelled}"
    assert int(corr[1].split("=")[1]) >= 2
    assert len(by_kind["rule_train_model"]) == 3

    # The four MD runs: one allocation, one run wide, four runs long.
    (group_job,) = by_kind["group_md"]
    md = [json.loads(p.read_text()) for p in sorted((tmp_path / "results/md").glob("*/*/status.json"))]
    assert len(md) == 4
    assert {r["slurm_job"] for r in md} == {group_job}
    assert len({r["step"] for r in md}) == 4
    info = slurm_job(group_job)
    assert info["TRES"].startswith("cpu=1,"), info["TRES"]
    assert info["TimeLimit"] == "04:00:00"  # 4 x "60 * attempt" minutes

    print(f"\ntoy campaign through SLURM: {wall_s:.0f} s, {len(jobs)} SLURM jobs")

