"""The tiny campaign (config/test.yaml's baseline and corr) through ``snakemake --profile slurm`` on a live cluster.

It runs in a copy of the workflow (Snakefile, workflow/ with the profile, config/, scripts/ and the top-level
``slurm`` link), so results and SLURM logs land in a temporary directory, exactly as a user's command at a repository
root would. The node has no GPUs: the profile's GPU requests are dropped and sizes capped (slurm_harness.cpu_overrides).
"""

from __future__ import annotations

import shutil

import pytest
import yaml
from slurm_harness import REPO, cpu_overrides, jobs_of_run, run_snakemake, slurm_job, submitted_rules

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

WORKFLOW_FILES = ("Snakefile", "workflow", "config", "scripts", "envs", "slurm")
LOCAL_RULES = {"all", "score_run", "compute_rdf", "make_tables", "make_figures", "paper_figures", "pair_reference"}
TIMEOUT_S = 2400


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("slurm_campaign")
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_symlink() or src.is_file():
            shutil.copy2(src, root / name, follow_symlinks=False)
        else:
            shutil.copytree(src, root / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    # the paper's two methods only: the stabiliser presets of test.yaml are covered by the e2e test
    config = yaml.safe_load((root / "config" / "test.yaml").read_text())
    config["grid"].update(method=["baseline", "corr"], exclude=[])
    (root / "config" / "slurm.yaml").write_text(yaml.safe_dump(config))
    return root


def test_tiny_campaign_through_slurm(slurm_cluster, workflow_copy):
    root = workflow_copy
    run = run_snakemake(
        ["--profile", "slurm", "--configfile", "config/slurm.yaml", *cpu_overrides(slurm_cluster)],
        cwd=root,
        timeout_s=TIMEOUT_S,
    )
    assert run.returncode == 0, run.log[-6000:]
    for name in ("table1", "table2", "table3", "table4"):
        assert (root / "results" / "test" / "tables" / f"{name}.csv").stat().st_size > 0, name

    # Every non-local job went through sbatch and completed; the local rules never did.
    assert run.run_id and run.jobs
    states = jobs_of_run(run.run_id)
    assert states == dict.fromkeys(run.jobs, "COMPLETED"), states
    by_kind = submitted_rules(run.jobs)
    assert {"rule_make_reference_data", "rule_build_structure", "rule_train_model", "group_md"} <= set(by_kind)
    assert not {f"rule_{name}" for name in LOCAL_RULES} & set(by_kind), by_kind
    assert len(by_kind["rule_train_model"]) == 2
    assert "rule_run_md" not in by_kind  # every MD run went through the md group

    # The four MD runs shared one allocation, sized one run wide (the test node's CPUs, no GPU).
    md_runs = sorted((root / "results" / "test" / "md").rglob("status.json"))
    assert len(md_runs) == 4
    assert len(by_kind["group_md"]) < len(md_runs)
    for job_id in by_kind["group_md"]:
        assert slurm_job(job_id)["TRES"].startswith(f"cpu={slurm_cluster.cpus},")

    # Results and SLURM logs stayed in the copy, out of the repository.
    assert all(path.startswith(str(root)) for path in run.jobs.values()), run.jobs

    print(
        f"\ncluster start: {slurm_cluster.start_wall_s:.1f} s; tiny campaign through SLURM: {run.wall_s:.0f} s, "
        f"{len(run.jobs)} SLURM jobs ({', '.join(f'{k}: {len(v)}' for k, v in sorted(by_kind.items()))})"
    )
