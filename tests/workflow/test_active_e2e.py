"""One active-learning round end to end through the real Snakemake, nequip-train, LAMMPS and COMB.

config/test.yaml reduced to the baseline and an active method on the 1.10 cell. In the failing loop every
harvest run fails at its first snapshot (md.rmin_fail_A 2.5 Å is longer than the Hf-O bond), so each one gives
frames; in the stable loop nothing fails (the fail rules are off) and the loop ends after round 0.
"""

from __future__ import annotations

import json
import time

import ase.io
import pytest
import yaml

from workflow_helpers import copy_workflow, run_snakemake

pytestmark = pytest.mark.slow

ROOT = "results/al/train/nequip/L2"


def _campaign(tmp_path, md: dict) -> tuple:
    root = copy_workflow(tmp_path)
    config = yaml.safe_load((root / "config" / "test.yaml").read_text())
    config["campaign"] = "al"
    config["grid"] |= {"method": ["baseline", "al"], "ratio": [1.1], "exclude": []}
    config["methods"]["al"] = {"active": {"harvest": {"cell_seed": [7], "vseed": [3, 4], "window_steps": 100},
                                          "retrain": {"epochs": 2}}}
    config["md"] |= md
    (root / "config" / "al.yaml").write_text(yaml.safe_dump(config))
    start = time.perf_counter()
    run_snakemake(f"{ROOT}/al/seed0/metrics.json", "--cores", "2", "--configfile", "config/al.yaml", cwd=root,
                  timeout=1800)
    print(f"active-learning loop: {time.perf_counter() - start:.0f} s")
    return root, json.loads((root / ROOT / "al/seed0/metrics.json").read_text())


def test_a_failing_model_is_retrained_on_its_harvest(tmp_path):
    root, metrics = _campaign(tmp_path, {"rmin_fail_A": 2.5})
    round0 = root / ROOT / "al/seed0/active/round0"
    selection = json.loads((round0 / "selection.json").read_text())
    assert selection["outcomes"] == {"fail": 2} and selection["stop"] == ""
    harvest = ase.io.read(round0 / "harvest.xyz", index=":")
    assert len(harvest) == selection["n_selected"] >= 2
    assert {a.info["source_step"] for a in harvest} == {0}  # fail at the first snapshot: the window is empty
    assert all("/c7/" in a.info["source_run"] and a.info["source_run"].endswith(("v3", "v4")) for a in harvest)
    train = ase.io.read(root / "results/al/data/reference/train.xyz", index=":")
    merged = ase.io.read(round0 / "train.xyz", index=":")
    assert len(merged) == len(train) + len(harvest)
    label = json.loads((round0 / "label.json").read_text())
    assert label["reference_calls"] == len(harvest) and label["wall_s"] > 0
    round_metrics = json.loads((round0 / "metrics.json").read_text())
    assert round_metrics["label_budget"] == len(harvest) and round_metrics["round_wall_s"] > 0
    assert metrics["label_budget"] == len(harvest) and metrics["active_rounds_done"] == 1
    assert metrics["method"] == "al" and metrics["stabilisers"] == "active"
    base = root / ROOT / "baseline/seed0/model.nequip.zip"
    assert (root / ROOT / "al/seed0/model.nequip.zip").read_bytes() == (round0 / "model.nequip.zip").read_bytes()
    assert (round0 / "model.nequip.zip").read_bytes() != base.read_bytes()
    from gnnff_stability.md.forcefield import load_model

    import torch

    before = {k: v.clone() for k, v in load_model(base).model.state_dict().items()}
    after = load_model(round0 / "model.nequip.zip").model.state_dict()
    changed = [k for k, v in before.items() if v.is_floating_point() and not torch.equal(v, after[k])]
    assert changed, "the retrained weights equal round 0's"


def test_a_loop_whose_harvest_runs_are_stable_ends_after_round_0(tmp_path):
    root, metrics = _campaign(tmp_path, {"rmin_fail_A": 0.0, "temp_fail_factor": 100.0, "fmax_crash_eV_per_A": 1e6})
    selection = json.loads((root / ROOT / "al/seed0/active/round0/selection.json").read_text())
    assert selection["n_selected"] == 0 and selection["outcomes"] == {"stable": 2}
    assert metrics["active_stop"] == selection["stop"] and "round 0 harvested no frame" in metrics["active_stop"]
    assert metrics["active_rounds_done"] == 0 and metrics["label_budget"] == 0
    assert not (root / ROOT / "al/seed0/active/round0/harvest.xyz").exists()
    base = root / ROOT / "baseline/seed0/model.nequip.zip"
    assert (root / ROOT / "al/seed0/model.nequip.zip").read_bytes() == base.read_bytes()
