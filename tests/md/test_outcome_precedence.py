"""A run that meets a crash condition and a fail condition is a crash (md.outcome's rules).

The classification is ordered: an engine-reported crash, then the crash conditions the files show
(non-finite thermo, lost atoms, a model force above ``fmax_crash_eV_per_A``), then the fail conditions
(hot, close atoms). Each case here meets a fail condition too, with no crash reported by the engine.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gnnff_stability.md import classify_run
from gnnff_stability.settings import MDSettings
from partial_settings import partial

T_SET = 1000.0
SETTINGS = partial(MDSettings, {"temp_fail_factor": 1.5, "fmax_crash_eV_per_A": 100.0, "rmin_fail_A": 1.0})


def thermo(temps, natoms=96, fmax=1.0, pe=-10.0) -> pd.DataFrame:
    """A thermo table with rows every 10 steps."""
    n = len(temps)
    return pd.DataFrame({
        "step": np.arange(n) * 10, "temp_K": np.asarray(temps, dtype=float),
        "pe_eV": np.broadcast_to(np.asarray(pe, dtype=float), n).copy(), "ke_eV": np.full(n, 1.0),
        "etotal_eV": np.full(n, -9.0), "natoms": np.broadcast_to(natoms, n).astype(int),
        "fmax_eV_per_A": np.broadcast_to(np.asarray(fmax, dtype=float), n).copy(),
    })


HOT = [1000.0, 3000.0, 3200.0, 3400.0]  # mean 2650 K > 1.5 x 1000 K: a fail on its own


def test_hot_alone_is_a_fail():
    """The hot table of the cases below is a fail when nothing else happens (the cases are not vacuous)."""
    out = classify_run(thermo(HOT), None, T_SET, SETTINGS, 96)
    assert out.classification == "fail" and "mean temperature" in out.reason


@pytest.mark.parametrize("ramp", [False, True], ids=["fixed_set_point", "moving_set_point"])
def test_hot_run_losing_atoms_is_a_crash(ramp):
    kwargs = {"set_point_K": np.full(len(HOT), T_SET), "window_rows": 1} if ramp else {}
    out = classify_run(thermo(HOT, natoms=[96, 96, 90, 90]), None, T_SET, SETTINGS, 96, **kwargs)
    assert out.classification == "crash", out
    assert "lost atoms" in out.reason and "90 of 96 atoms left" in out.reason
    assert (out.crash_step, out.fail_step) == (20, None)


@pytest.mark.parametrize("ramp", [False, True], ids=["fixed_set_point", "moving_set_point"])
def test_hot_run_with_a_force_above_threshold_is_a_crash(ramp):
    kwargs = {"set_point_K": np.full(len(HOT), T_SET), "window_rows": 1} if ramp else {}
    out = classify_run(thermo(HOT, fmax=[1.0, 50.0, 100.5, 2000.0]), None, T_SET, SETTINGS, 96, **kwargs)
    assert out.classification == "crash", out
    assert "model force above threshold" in out.reason
    assert (out.crash_step, out.fail_step) == (20, None)  # 100.5 > 100 eV/Å first at step 20


def test_hot_run_with_a_non_finite_energy_is_a_crash():
    out = classify_run(thermo(HOT, pe=[-10.0, -10.0, -10.0, np.nan]), None, T_SET, SETTINGS, 96)
    assert (out.classification, out.crash_step) == ("crash", 30)
    assert "non-finite thermo value" in out.reason


def test_close_atoms_and_lost_atoms_is_a_crash(tmp_path):
    """Two atoms 0.5 Å apart (< rmin_fail_A) in the dump, and an atom lost: the crash wins."""
    dump = tmp_path / "dump.lammpstrj"
    positions = np.array([[1.0, 1.0, 1.0], [1.5, 1.0, 1.0], [5.0, 5.0, 5.0]])
    with open(dump, "w") as fh:
        fh.write("ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n3\nITEM: BOX BOUNDS pp pp pp\n" + "0 10\n" * 3)
        fh.write("ITEM: ATOMS id type x y z fx fy fz\n")
        fh.writelines(f"{k + 1} {1 + k % 2} {p[0]} {p[1]} {p[2]} 0 0 0\n" for k, p in enumerate(positions))
    close = classify_run(thermo([T_SET] * 3, natoms=3), dump, T_SET, SETTINGS, 3)
    assert close.classification == "fail" and "0.500 A apart" in close.reason  # the dump alone: a fail
    out = classify_run(thermo([T_SET] * 3, natoms=[3, 3, 2]), dump, T_SET, SETTINGS, 3)
    assert (out.classification, out.crash_step) == ("crash", 20) and "lost atoms" in out.reason
