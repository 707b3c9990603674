"""Dry runs of the real Snakemake on every shipped config: the DAG, targets and file contracts."""

from __future__ import annotations

import re

import pytest
import yaml

from workflow_helpers import job_counts, run_snakemake


@pytest.mark.parametrize("config", ["config.yaml", "test.yaml", "paper.yaml", "gemnet.yaml", "study.yaml",
                                    "labels_chgnet.yaml", "sic.yaml"])
def test_dry_run(workdir, config):
    proc = run_snakemake("-n", "--configfile", f"config/{config}", cwd=workdir)
    counts = job_counts(proc.stdout)
    assert counts["make_tables"] == 1 and counts["all"] == 1
    assert counts["study_report"] == 1  # every config has a baseline and a method to compare with it
    if config == "paper.yaml":
        # the paper grid (16 trained models) and the extended study (14 more, and SAM's radius scan: 2 radii
        # x 3 deep models, and the active round's 3) x 3 ratios x 3 temperatures; the 29 NequIP / Allegro models are compiled for
        # pair_nequip / pair_allegro, GemNet-T runs in the embedded engine; one phase-1 fit per
        # decomposition method
        assert counts["train_model"] == 36
        # and one active-learning round on the 3 deep models (their model comes from the round, not
        # train_model): 4 harvest runs each (2 deficient cells x 2 velocity seeds at 2400 K) from 2 new cells
        assert counts["harvest_md"] == 12 and counts["select_frames"] == counts["finish_active"] == 3
        assert counts["build_structure"] == 3 + 2
        assert counts["compile_model"] == 29 + 2
        assert counts["run_md"] == 324 + 27 and counts["score_run"] == 324 + 27
        assert counts["prefit_body_terms"] == 2 and counts["pair_interaction"] == 36 + 3
        # the benchmark metrics at the benchmarks' protocols (LAMBench NVE, a 1000 K/ps ramp)
        assert counts["run_nve_md"] == counts["run_ramp_md"] == 36 + 3
    if config == "gemnet.yaml":
        # GemNet-T, 1 and 4 blocks (baseline and corr) on the embedded campaign, no compile step,
        # its metrics too
        assert counts["train_model"] == 4 and counts["run_md"] == 12 and "compile_model" not in counts
        assert counts["run_nve_md"] == counts["run_ramp_md"] == 4
    elif config == "config.yaml":
        # NequIP L2 baseline and corr on 3 cells; Allegro L3 baseline and corr on 3, SAM and the
        # decomposition on the 2 deficient cells
        assert counts["train_model"] == 6 and counts["run_md"] == 4 * 3 + 2 * 2
        assert counts["run_reference_md"] == 3 and counts["compute_rdf"] == 16
        assert counts["prefit_body_terms"] == 1 and counts["pair_interaction"] == 6
        # the stability metrics beyond the paper: one NVE and one ramp run per trained model
        assert counts["run_nve_md"] == counts["nve_drift"] == 6
        assert counts["run_ramp_md"] == counts["ramp_failure"] == 6
    elif config == "study.yaml":
        # the paired study: 10 training seeds x 2 arms, 2 deficient cells x 2 velocity seeds at 1800 K, one
        # ramp per model
        assert counts["train_model"] == 20 and counts["run_md"] == 20 * 2 * 2
        assert counts["run_ramp_md"] == 20 and "run_nve_md" not in counts
    elif config == "sic.yaml":
        # 3C-SiC: NequIP L2 and Allegro L3, each baseline, corr and the decomposition, on the stoichiometric
        # cell and the C-deficient 1:0.9 cell at 2000 K; Tersoff reference data and reference MD
        assert counts["make_reference_data"] == 1 and counts["build_structure"] == 2
        assert counts["train_model"] == 6 and counts["prefit_body_terms"] == 1  # one phase-1 fit per method
        assert counts["run_md"] == counts["score_run"] == counts["compute_rdf"] == 6 * 2
        assert counts["run_reference_md"] == 2 and counts["pair_interaction"] == 6
        assert "run_nve_md" not in counts and "run_ramp_md" not in counts
    elif config == "labels_chgnet.yaml":
        # the demo's NequIP L2 and Allegro L3, baseline and corr, on CHGNet labels: 4 models x 3 cells,
        # one data set, COMB reference MD on the 3 cells, no pre-fit and no benchmark metrics
        assert counts["make_reference_data"] == 1 and counts["build_structure"] == 3
        assert counts["train_model"] == 4 and counts["pair_interaction"] == 4
        assert counts["run_md"] == counts["score_run"] == counts["compute_rdf"] == 4 * 3
        assert counts["run_reference_md"] == 3
        assert not {"compile_model", "prefit_body_terms", "run_nve_md", "run_ramp_md"} & set(counts)
    elif config == "test.yaml":
        assert "run_nve_md" not in counts and "run_ramp_md" not in counts  # metrics off by default


def test_one_run_rebuilt_alone(workdir):
    target = "results/demo/analysis/nequip/L2/corr/seed0/ratio1.10/c0/T1200K/v0/stability.json"
    proc = run_snakemake("-n", target, "--configfile", "config/config.yaml", cwd=workdir)
    assert job_counts(proc.stdout) == {
        "make_reference_data": 1,
        "build_structure": 1,
        "train_model": 1,
        "run_md": 1,
        "score_run": 1,
    }


def test_bad_config_fails_before_any_job(workdir):
    config = yaml.safe_load((workdir / "config" / "test.yaml").read_text())
    config["md"]["engine"] = "gromacs"
    (workdir / "config" / "bad.yaml").write_text(yaml.safe_dump(config))
    proc = run_snakemake("-n", "--configfile", "config/bad.yaml", cwd=workdir, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "md.engine" in out and "gromacs" in out and "embedded" in out
    assert not (workdir / "results").exists()


def test_lint(workdir):
    proc = run_snakemake("--lint", "--configfile", "config/test.yaml", cwd=workdir, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _planned_files(stdout: str) -> set[str]:
    """Every output and log file a dry run plans (its ``output:`` and ``log:`` lines)."""
    files = set()
    for line in stdout.splitlines():
        m = re.match(r"^\s*(output|log): (.+)$", line)
        if m:
            files.update(f.strip() for f in m.group(2).split(","))
    return files


def test_campaigns_plan_disjoint_outputs(workdir):
    planned = {}
    for config, campaign in (("config.yaml", "demo"), ("study.yaml", "study")):
        proc = run_snakemake("-n", "--configfile", f"config/{config}", cwd=workdir)
        planned[campaign] = _planned_files(proc.stdout)
        assert len(planned[campaign]) > 50
        outside = sorted(f for f in planned[campaign] if not f.startswith(f"results/{campaign}/"))
        assert not outside, outside[:5]
    assert not planned["demo"] & planned["study"]
    assert "results/demo/tables/table2.md" in planned["demo"]
    assert "results/study/tables/table2.md" in planned["study"]


def test_campaign_defaults_to_the_config_file_name(workdir):
    config = yaml.safe_load((workdir / "config" / "test.yaml").read_text())
    del config["campaign"]
    (workdir / "config" / "scan_b.yaml").write_text(yaml.safe_dump(config))
    proc = run_snakemake("-n", "--configfile", "config/scan_b.yaml", cwd=workdir)
    files = _planned_files(proc.stdout)
    assert files and all(f.startswith("results/scan_b/") for f in files)


def _active_config(workdir, **active) -> str:
    """config/test.yaml with an active method (base baseline, one round) beside the others."""
    config = yaml.safe_load((workdir / "config" / "test.yaml").read_text())
    config["methods"]["al"] = {"active": {"harvest": {"cell_seed": [7], "vseed": [3], "ratio": [1.1]}, **active}}
    config["grid"]["method"].append("al")
    (workdir / "config" / "al.yaml").write_text(yaml.safe_dump(config))
    return "config/al.yaml"


def test_dry_run_with_an_active_method(workdir):
    proc = run_snakemake("-n", "--configfile", _active_config(workdir), cwd=workdir)
    counts = job_counts(proc.stdout)
    # the active method's evaluation runs are the grid's (2 cells: 1.10 and 2.00); its model comes from its
    # round, not from train_model: one harvest run (ratio 1.10, cell 7, 1200 K, vseed 3) of the baseline's model,
    # then the selection checkpoint; the labelling and retraining are planned once the checkpoint has run
    # (config/test.yaml alone plans 6 trainings and 8 runs); the harvest cell is a third start cell
    assert counts["train_model"] == 6 and counts["harvest_md"] == 1 and counts["select_frames"] == 1
    assert counts["finish_active"] == 1 and counts["run_md"] == 8 + 2 and counts["build_structure"] == 3
    planned = _planned_files(proc.stdout)
    root = "results/test/train/nequip/L2/al/seed0"
    assert f"{root}/active/round0/md/ratio1.10/c7/T1200K/v3/status.json" in planned
    assert f"{root}/active/round0/selection.json" in planned
    assert not any("/c7/" in f and "/md/nequip/" in f for f in planned)  # no evaluation run on a harvest cell
    assert "results/test/md/nequip/L2/al/seed0/ratio1.10/c0/T1200K/v0/status.json" in planned
