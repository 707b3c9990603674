"""The analysis and report layers read the species from the material: a three-species material gives six
pairs in type order, and the distance and stability tables carry exactly its ``rmin_<pair>`` columns, with
the values of a hand-built cell whose closest pair is known."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pandas as pd
import pytest
from analysis_builders import HFO2, snapshot, write_run

from gnnff_stability.analysis.distances import snapshot_observables
from gnnff_stability.analysis.score import score_run
from gnnff_stability.grid import METHOD_COLUMNS, RUN_KEYS
from gnnff_stability.report.collect import collect_results
from gnnff_stability.report.labels import pair_dash_names, ratio_axis, ratio_label
from gnnff_stability.report.markdown import table_markdown
from gnnff_stability.report.tables import is_paper_material
from gnnff_stability.settings import OODSettings, StabilitySettings
from partial_settings import partial

#: Si, C, N in that type order; the ratio counts N per Si.
SICN = dataclasses.replace(HFO2, name="SiCN", species=("Si", "C", "N"),
                           masses={"Si": 28.0855, "C": 12.011, "N": 14.007}, ood=OODSettings(remove="N", per="Si"))
SICN_PAIRS = ("SiSi", "SiC", "SiN", "CC", "CN", "NN")
L = 10.0  # Å, cubic periodic cell

# Two atoms of each species; the closest pair of the cell is Si(1)-C(3), 1.2 Å apart along z.
POSITIONS = np.array([[1.0, 1.0, 1.0], [6.0, 6.0, 6.0],   # Si
                      [1.0, 1.0, 2.2], [6.0, 6.0, 8.0],   # C
                      [1.0, 3.0, 1.0], [6.0, 8.5, 6.0]])  # N
TYPES = np.array([1, 1, 2, 2, 3, 3])


def _brute_force_minima(positions: np.ndarray, types: np.ndarray) -> dict[str, float]:
    """Minimum image distance of every pair of SICN over the 27 neighbouring images (no neighbour list)."""
    shifts = np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=float) * L
    out = {}
    for (a, b), name in zip(SICN.pairs, SICN.pair_names, strict=True):
        best = np.inf
        for i, j in itertools.product(np.flatnonzero(types == a), np.flatnonzero(types == b)):
            d = np.linalg.norm(positions[j] - positions[i] + shifts, axis=1)
            if i == j:
                d = d[d > 0]
            best = min(best, float(d.min()))
        out[name] = best
    return out


def test_three_species_give_six_pairs_in_type_order():
    assert SICN.pairs == ((1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3))
    assert SICN.pair_names == SICN_PAIRS
    assert list(SICN.pair_labels.values()) == ["Si–Si", "Si–C", "Si–N", "C–C", "C–N", "N–N"]
    assert pair_dash_names(SICN) == ("Si-Si", "Si-C", "Si-N", "C-C", "C-N", "N-N")


def test_ratio_labels_follow_the_ood_axis():
    assert ratio_label(ratio_axis(HFO2), "1.55") == "Hf:O 1:1.55"  # unchanged for HfO2
    assert ratio_label(ratio_axis(SICN), 0.9) == "Si:N 1:0.9"


def test_distance_table_has_exactly_the_material_pairs_and_the_known_minima():
    snaps = [snapshot(0, POSITIONS, TYPES, np.eye(3) * L), snapshot(10, POSITIONS + 0.01, TYPES, np.eye(3) * L)]
    obs = snapshot_observables(snaps, pairs=SICN.pairs, pair_names=SICN.pair_names)
    rmin_cols = [c for c in obs.columns if c.startswith("rmin_")]
    assert rmin_cols == [f"rmin_{p}" for p in SICN_PAIRS]
    want = _brute_force_minima(POSITIONS, TYPES)
    assert min(want, key=want.get) == "SiC" and want["SiC"] == pytest.approx(1.2)
    for name, value in want.items():
        assert obs[f"rmin_{name}"].tolist() == pytest.approx([value, value], abs=1e-9)


def test_stability_files_and_collected_results_carry_the_material_pairs(tmp_path):
    cell = np.eye(3) * L
    snaps = [snapshot(s, POSITIONS, TYPES, cell) for s in (0, 100, 200)]
    files = write_run(tmp_path / "run", snaps, {0: 1200.0, 100: 1200.0, 200: 1200.0}, steps_planned=200)
    score_out, sn_out = tmp_path / "stability.json", tmp_path / "sn.csv"
    record = score_run(files["dump"], files["thermo"], files["status"], None, partial(StabilitySettings, {}),
                       score_out, sn_out, material=SICN)
    want = _brute_force_minima(POSITIONS, TYPES)
    assert [k for k in record if k.startswith("rmin_")] == [f"rmin_{p}_A" for p in SICN_PAIRS]
    for name, value in want.items():
        assert record[f"rmin_{name}_A"] == pytest.approx(value, abs=1e-9)
    sn = pd.read_csv(sn_out)
    assert [c for c in sn.columns if c.startswith("rmin_")] == [f"rmin_{p}" for p in SICN_PAIRS]
    assert [c for c in sn.columns if c.startswith("r_term_")] == [f"r_term_{p}" for p in SICN_PAIRS]
    assert sn["r_term"].tolist() == pytest.approx([1.0, 1.0])  # the cell does not move

    run = {k: 0 for k in RUN_KEYS} | {"model": "m", "layers": 2, "method": "baseline", "ratio": 0.9,
                                      "temp_K": 1200, "family": "nequip"}
    run |= {k: False for k in METHOD_COLUMNS if k not in run} | {"score": str(score_out)}
    res = collect_results(pd.DataFrame([run]), material=SICN)
    assert [c for c in res.columns if c.startswith("rmin_")] == [f"rmin_{p}_A" for p in SICN_PAIRS]
    assert res.loc[0, "rmin_SiC_A"] == pytest.approx(1.2)
    assert json.loads(score_out.read_text())["rmin_NN_A"] == pytest.approx(want["NN"])


def test_table_a4_markdown_heads_its_columns_by_the_material():
    row = {"model": "m", "family": "nequip", "layers": 2, "method": "baseline", "seed": 0, "ratio": "0.90",
           "cell_seed": 0, "temp_K": 1200, "vseed": 0, **{f"rmin_{p}_A": 1.5 for p in SICN_PAIRS}}
    text = table_markdown("tableA4", pd.DataFrame([row]), [], material=SICN)
    head = text.splitlines()[4]
    assert "| Si:N |" in head and "Hf" not in head
    assert [label for label in ("Si–Si Å", "Si–C Å", "Si–N Å", "C–C Å", "C–N Å", "N–N Å") if label in head] == [
        "Si–Si Å", "Si–C Å", "Si–N Å", "C–C Å", "C–N Å", "N–N Å"]
    hfo2 = table_markdown("tableA4", pd.DataFrame([row]), [], material=HFO2).splitlines()[4]
    assert "| Hf:O |" in hfo2 and "Hf–O Å" in hfo2


def test_the_paper_values_apply_only_to_the_paper_material():
    assert is_paper_material(HFO2)
    assert not is_paper_material(SICN)


def test_table2_has_paper_columns_only_for_the_paper_material():
    row = {"model": "m", "family": "nequip", "layers": 2, "method": "baseline", "temp_K": 1200, "corr_value": 0.4,
           "fmae_meV_per_A": 400.0, "emae_meV_per_atom": 10.0, "s_index_0.90": 0.97}
    header = table_markdown("table2", pd.DataFrame([row]), ["0.90"], material=SICN).splitlines()[4]
    assert "paper" not in header and "| S Si:N 1:0.9 |" not in header
    assert header.count("|") - 1 == 8  # model, L, method, T, Corr, FMAE, EMAE, S 1:0.9
    hfo2 = table_markdown("table2", pd.DataFrame([row]), ["0.90"], material=HFO2).splitlines()[4]
    assert hfo2.count("| paper |") == 4  # beside Corr, FMAE, EMAE and the S column
