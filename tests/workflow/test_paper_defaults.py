"""The schema's defaults are the paper's protocol (Zeng et al. 2025), value by value.

Expected values are the paper's, as transcribed in the project's paper reference (Protocol section and
Table A4; Table A4's rows are also packaged in ``report/paper_reference.csv``), not the schema's.
"""

from __future__ import annotations

from importlib import resources
from io import StringIO

import pandas as pd
import pytest

from gnnff_stability.config import validate_config
from gnnff_stability.settings import MDSettings, StabilitySettings
from partial_settings import partial

#: The smallest config the schema accepts: one model, the baseline and the paper's correlation method.
MINIMAL = {
    "grid": {"model": ["nequip"], "layers": {"nequip": [4]}, "method": ["baseline", "corr"]},
    "models": {"nequip": {"family": "nequip"}},
    "methods": {"baseline": {"corr": None}, "corr": {"corr": {"features": {"nequip": "edge_1o"}}}},
}


@pytest.fixture(scope="module")
def filled() -> dict:
    return validate_config(MINIMAL)


def test_failure_thresholds_are_the_papers():
    s = partial(MDSettings, {})
    assert (s.fmax_crash_eV_per_A, s.temp_fail_factor, s.rmin_fail_A) == (1000.0, 1.5, 1.0)


def test_md_protocol_is_the_papers(filled):
    """40,000 steps of 0.25 fs (10 ps), a snapshot every 100 steps, at 1200 K; cells 1:1.1, 1:1.55, 1:2."""
    s = partial(MDSettings, {})
    assert (s.steps, s.dt_fs, s.dump_every) == (40000, 0.25, 100)
    assert s.steps * s.dt_fs / 1000 == pytest.approx(10.0)  # ps, the paper's footnote
    assert (filled["md"]["steps"], filled["md"]["dt_fs"], filled["md"]["dump_every"]) == (40000, 0.25, 100)
    assert filled["grid"]["temp_K"] == [1200]
    assert filled["grid"]["ratio"] == [1.1, 1.55, 2.0]


def test_stability_index_and_corr_loss_are_the_papers(filled):
    """S_index α = 1, β = 1/4; the loss: cosine 0 → 0.1 over 100 epochs, 1024 edges, c_f = c_e = 1."""
    s = partial(StabilitySettings, {})
    assert (s.alpha, s.beta) == (1.0, 0.25)
    corr = filled["methods"]["corr"]["corr"]
    assert (corr["scheduler"], corr["c_min"], corr["c_max"], corr["t_cycle"], corr["sample_edges"]) == (
        "cosine", 0.0, 0.1, 100, 1024)
    weights = filled["training"]["loss_coeffs"]
    assert (weights["forces"], weights["total_energy"]) == (1.0, 1.0)
    assert corr["c_max"] <= min(weights.values())  # "c_max should not exceed c_f or c_e"


def _table_a4() -> pd.DataFrame:
    text = resources.files("gnnff_stability.report").joinpath("paper_reference.csv").read_text()
    rows = pd.read_csv(StringIO(text))
    rows = rows[rows["table"] == "tableA4"]
    wide = rows.pivot_table(index=["model", "method", "ratio"], columns="quantity", values="value",
                            aggfunc="first")
    return wide.apply(pd.to_numeric, errors="coerce").reset_index()


def test_failure_thresholds_separate_the_papers_table_a4():
    """The default thresholds put every Table A4 run on the side the paper reports: the runs that did not
    crash stay below the force threshold and 1.5 x 1200 K (Allegro corr at 1:1.1: 1795 K, the closest),
    the crashed ones with a readable force exceed it; no atom pair in a completed run the paper scores
    above the fail level comes closer than rmin_fail_A, while GemNet-T base at 1:1.1, a Fail in Table 1,
    has Hf-Hf at 0.8 Å."""
    s = partial(MDSettings, {})
    a4 = _table_a4()
    assert len(a4) == 18
    crashed = a4[a4["crashed"] == 1]
    ran = a4[a4["crashed"] == 0]
    assert (ran["fmax_eV_per_A"] < s.fmax_crash_eV_per_A).all()
    assert (crashed["fmax_eV_per_A"].dropna() > s.fmax_crash_eV_per_A).all()
    assert crashed["fmax_eV_per_A"].notna().sum() >= 3
    assert (ran["temp_mean_K"] < s.temp_fail_factor * 1200).all()
    assert ran["temp_mean_K"].max() == 1795  # the run that bounds the factor from below
    rmin = ran[["rmin_HfHf_A", "rmin_HfO_A", "rmin_OO_A"]].min(axis=1)
    gemnet_fail = (ran["model"] == "gemnet") & (ran["method"] == "baseline") & (ran["ratio"] == 1.1)
    assert gemnet_fail.sum() == 1
    assert (rmin[gemnet_fail] < s.rmin_fail_A).all()
    # the other completed runs: every pair farther apart than rmin_fail_A (GemNet-T base at 1:1.55,
    # whose 1.0 Å is rounded, sits on the threshold and is left out)
    on_edge = (ran["model"] == "gemnet") & (ran["method"] == "baseline") & (ran["ratio"] == 1.55)
    assert (rmin[~gemnet_fail & ~on_edge] > s.rmin_fail_A).all()
