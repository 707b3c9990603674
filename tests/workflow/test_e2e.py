"""The tiny campaign end to end through the real Snakemake, nequip-train and LAMMPS.

One module-scoped run of ``config/test.yaml`` (NequIP, baseline and corr, two cells, a few epochs and a
few hundred MD steps), then checks of its tables and of what Snakemake plans to redo after changes.
"""

from __future__ import annotations

import json
import math
import time

import pandas as pd
import pytest
import yaml

from gnnff_stability.config import load_config
from gnnff_stability.grid import expand_grid

from workflow_helpers import copy_workflow, job_counts, run_snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    root = copy_workflow(tmp_path_factory.mktemp("campaign"))
    start = time.perf_counter()
    run_snakemake("--cores", "2", "--configfile", "config/test.yaml", cwd=root, timeout=1800)
    print(f"tiny campaign: {time.perf_counter() - start:.0f} s")
    return root


def test_tables_have_one_row_per_run(campaign):
    runs = expand_grid(load_config(campaign / "config" / "test.yaml"))
    a4 = pd.read_csv(campaign / "results" / "tables" / "tableA4.csv")
    assert len(a4) == len(runs) == 4
    assert a4["s_index"].between(0, 1.5).all()
    table2 = pd.read_csv(campaign / "results" / "tables" / "table2.csv")
    assert set(table2["method"]) == {"baseline", "corr"}
    for column in ("fmae_meV_per_A", "emae_meV_per_atom", "corr_value"):
        values = table2[column].astype(float)
        assert values.map(math.isfinite).all(), column
    assert (campaign / "results" / "tables" / "table2.md").read_text().strip()


def test_every_run_has_a_status(campaign):
    for status in (campaign / "results" / "md").rglob("status.json"):
        info = json.loads(status.read_text())
        assert info["classification"] in {"stable", "fail", "crash"}
        assert info["steps_done"] <= info["steps_planned"] == 200


def test_nothing_left_to_do(campaign):
    proc = run_snakemake("-n", "--configfile", "config/test.yaml", cwd=campaign)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_changed_method_reruns_only_its_runs(campaign):
    config = yaml.safe_load((campaign / "config" / "test.yaml").read_text())
    config["methods"]["corr"]["corr"]["c_max"] = 0.05
    (campaign / "config" / "changed.yaml").write_text(yaml.safe_dump(config))
    proc = run_snakemake("-n", "--configfile", "config/changed.yaml", cwd=campaign)
    counts = job_counts(proc.stdout)
    assert counts.get("train_model") == 1  # corr only, baseline untouched
    assert counts.get("run_md") == 2 and counts.get("score_run") == 2
    assert "make_reference_data" not in counts and "build_structure" not in counts
    assert "output: results/train/nequip/L2/baseline" not in proc.stdout  # baseline model kept


def test_metrics_carry_the_preset_name_and_role(campaign):
    for metrics in (campaign / "results" / "train").rglob("metrics.json"):
        info = json.loads(metrics.read_text())
        method = metrics.parent.parent.name  # results/train/<model>/L<layers>/<method>/seed<seed>/
        assert info["method"] == method
        assert info["role"] == {"baseline": "baseline", "corr": "paper corr"}[method]


def test_paper_figures_from_existing_results(campaign):
    made = campaign / "results" / "tables" / "table2.csv"
    before = made.stat().st_mtime_ns
    run_snakemake("paper_figures", "--cores", "1", "--configfile", "config/test.yaml", cwd=campaign)
    again = campaign / "results" / "paper_figures" / "tables" / "table2.csv"
    # the same results give the same table, written beside make_tables' output, not over it
    pd.testing.assert_frame_equal(pd.read_csv(again), pd.read_csv(made))
    assert made.stat().st_mtime_ns == before
    assert (campaign / "results" / "paper_figures" / "figures" / "fig3_corr_vs_stability.png").exists()


def test_report_bundles_tables_and_figures(campaign):
    report = campaign / "report.html"
    run_snakemake("--report", str(report), "--configfile", "config/test.yaml", cwd=campaign)
    html = report.read_text(errors="replace")
    assert "fig3_corr_vs_stability" in html and "table2" in html
