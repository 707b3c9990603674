"""A tiny SiC campaign end to end through the real Snakemake, nequip-train and LAMMPS (docs/materials.md):
one model, one method, one cell of config/sic.yaml, with Tersoff reference data and reference MD."""

from __future__ import annotations

import json
import time

import ase.io
import pandas as pd
import pytest
import yaml

from workflow_helpers import copy_workflow, run_snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    root = copy_workflow(tmp_path_factory.mktemp("sic"))
    config = yaml.safe_load((root / "config" / "sic.yaml").read_text())
    config["campaign"] = "sic_tiny"
    config["grid"].update(model=["nequip"], layers={"nequip": [2]}, method=["baseline"], ratio=[0.90])
    config["models"] = {"nequip": {"family": "nequip", "r_max": 4.0, "l_max": 1, "num_features": 8,
                                   "num_bessels": 4}}
    config["methods"] = {"baseline": {"corr": None}}
    config["data"]["reference"].update(n_frames=10, temps_K=[1500], equil_steps=50, sample_every=10)
    config["training"]["max_epochs"] = 3
    config["md"].update(steps=200, dump_every=50)
    config["refmd"].update(steps=200, dump_every=50)
    config["stability"]["equil_steps"] = 0
    (root / "config" / "sic_tiny.yaml").write_text(yaml.safe_dump(config))
    start = time.perf_counter()
    run_snakemake("--cores", "2", "--configfile", "config/sic_tiny.yaml", cwd=root, timeout=1800)
    print(f"tiny SiC campaign: {time.perf_counter() - start:.0f} s")
    return root / "results" / "sic_tiny"


def test_the_start_cell_is_depleted_3c_sic(campaign):
    cell = ase.io.read(campaign / "structures" / "ratio0.90" / "c0" / "cell.xyz")
    symbols = cell.get_chemical_symbols()
    # 2x2x2 zincblende: 32 Si, 32 C; C/Si 0.90 keeps floor(0.9 * 32 + 0.5) = 29 C, Si first
    assert symbols == ["Si"] * 32 + ["C"] * 29
    data = (campaign / "structures" / "ratio0.90" / "c0" / "cell.data").read_text()
    assert "1 28.085" in data and "2 12.011" in data


def test_the_reference_data_are_tersoff_frames_of_si_and_c(campaign):
    meta = json.loads((campaign / "data" / "reference" / "meta.json").read_text())
    assert "tersoff" in json.dumps(meta["labeller"]).lower()
    frames = ase.io.read(campaign / "data" / "reference" / "train.xyz", ":")
    assert {s for f in frames for s in f.get_chemical_symbols()} == {"Si", "C"}


def test_the_run_is_scored_with_the_materials_pairs(campaign):
    run = "nequip/L2/baseline/seed0/ratio0.90/c0/T2000K/v0"
    score = json.loads((campaign / "analysis" / run / "stability.json").read_text())
    assert score["classification"] in {"stable", "fail", "crash"}  # a 3-epoch model may well fail: still a result
    assert [k for k in score if k.startswith("rmin_")] == ["rmin_SiSi_A", "rmin_SiC_A", "rmin_CC_A"]
    sn = pd.read_csv(campaign / "analysis" / run / "sn.csv")
    assert [c for c in sn.columns if c.startswith("rmin_")] == ["rmin_SiSi", "rmin_SiC", "rmin_CC"]
    a4 = pd.read_csv(campaign / "tables" / "tableA4.csv")
    assert len(a4) == 1
    table2 = (campaign / "tables" / "table2.md").read_text()
    assert "| S 1:0.9 |" in table2 and "Hf" not in table2 and "paper" not in table2
    a4_md = (campaign / "tables" / "tableA4.md").read_text()
    assert "| Si:C |" in a4_md and "| 1:0.9 |" in a4_md and "Si–C Å" in a4_md
    pairs = pd.read_csv(campaign / "train" / "nequip" / "L2" / "baseline" / "seed0" / "pair_interaction.csv")
    assert sorted(set(pairs["pair"])) == ["C-C", "Si-C", "Si-Si"]
    reference = pd.read_csv(campaign / "data" / "reference" / "pair_reference.csv")
    assert sorted(set(reference["pair"])) == ["C-C", "Si-C", "Si-Si"]
    for figure in ("fig3_corr_vs_stability", "fig7_rdf", "fig_pair_interaction", "fig5_snapshots"):
        assert (campaign / "figures" / f"{figure}.png").stat().st_size > 0, figure
