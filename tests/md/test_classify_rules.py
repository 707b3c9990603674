"""Each rule of md.outcome.classify_run at its threshold, with the classification, step and reason it
writes into status.json, on hand-built thermo tables and dumps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gnnff_stability.md.outcome import (
    HALT_FORCE,
    HALT_LOST_ATOMS,
    HALT_NONFINITE,
    CrashInfo,
    Outcome,
    classify_run,
    halt_crash,
    min_distance_A,
)
from gnnff_stability.settings import MDSettings
from partial_settings import partial

T_SET = 1000.0
SETTINGS = partial(MDSettings, {"temp_fail_factor": 1.5, "fmax_crash_eV_per_A": 100.0, "rmin_fail_A": 1.0})
STABLE = Outcome("stable", "completed; temperature and interatomic distances within bounds", None)


def thermo(temps, natoms=96, fmax=1.0, pe=-10.0) -> pd.DataFrame:
    """A thermo table with rows every 10 steps; the ints and floats as parse_thermo_log gives them."""
    n = len(temps)
    return pd.DataFrame({
        "step": np.arange(n, dtype=np.int64) * 10, "temp_K": np.asarray(temps, dtype=float),
        "pe_eV": np.broadcast_to(np.asarray(pe, dtype=float), n).copy(), "ke_eV": np.full(n, 1.0),
        "etotal_eV": np.full(n, -9.0), "natoms": np.broadcast_to(natoms, n).astype(np.int64),
        "fmax_eV_per_A": np.broadcast_to(np.asarray(fmax, dtype=float), n).copy(),
    })


def write_dump(path, frames) -> None:
    """A LAMMPS dump of ``(step, positions)`` frames in a 10 Å periodic cube, alternating Hf and O."""
    with open(path, "w") as fh:
        for step, positions in frames:
            fh.write(f"ITEM: TIMESTEP\n{step}\nITEM: NUMBER OF ATOMS\n{len(positions)}\n"
                     "ITEM: BOX BOUNDS pp pp pp\n" + "0 10\n" * 3 + "ITEM: ATOMS id type x y z fx fy fz\n")
            fh.writelines(f"{k + 1} {1 + k % 2} {p[0]} {p[1]} {p[2]} 0 0 0\n" for k, p in enumerate(positions))


def _pair(distance):
    return np.array([[1.0, 1.0, 1.0], [1.0 + distance, 1.0, 1.0], [6.0, 6.0, 6.0]])


def test_a_quiet_run_is_stable_with_the_stable_reason(tmp_path):
    dump = tmp_path / "dump.lammpstrj"
    write_dump(dump, [(0, _pair(2.0)), (10, _pair(1.5))])
    assert classify_run(thermo([T_SET] * 3, natoms=3), dump, T_SET, SETTINGS, 3) == STABLE
    assert classify_run(thermo([T_SET] * 3), None, T_SET, SETTINGS, 96) == STABLE
    assert classify_run(thermo([T_SET] * 3), tmp_path / "absent.lammpstrj", T_SET, SETTINGS, 96) == STABLE


def test_an_engine_crash_is_reported_as_given():
    out = classify_run(thermo([T_SET] * 3), None, T_SET, SETTINGS, 96, CrashInfo(17, "model error"))
    assert out == Outcome("crash", "model error", 17)


def test_a_force_at_the_threshold_is_not_a_crash_and_above_it_is():
    assert classify_run(thermo([T_SET] * 3, fmax=100.0), None, T_SET, SETTINGS, 96) == STABLE
    out = classify_run(thermo([T_SET] * 3, fmax=[1.0, 100.5, 200.0]), None, T_SET, SETTINGS, 96)
    assert out == Outcome("crash", "model force above threshold at step 10 (T 1000 K, PE -10 eV, "
                                   "max |F| 100.5 eV/A)", 10)


def test_crash_reasons_name_the_rule_the_step_and_the_row():
    out = classify_run(thermo([T_SET, np.inf, T_SET]), None, T_SET, SETTINGS, 96)
    assert out == Outcome("crash", "non-finite thermo value at step 10 (T inf K, PE -10 eV, max |F| 1 eV/A)", 10)
    out = classify_run(thermo([T_SET] * 4, natoms=[96, 96, 90, 80]), None, T_SET, SETTINGS, 96)
    assert out == Outcome("crash", "lost atoms at step 20 (90 of 96 atoms left)", 20)
    # more atoms than at step 0 is not a loss
    assert classify_run(thermo([T_SET] * 2, natoms=[96, 97]), None, T_SET, SETTINGS, 96) == STABLE


def test_mean_temperature_at_the_limit_is_stable_and_above_it_a_fail():
    assert classify_run(thermo([1000.0, 2000.0]), None, T_SET, SETTINGS, 96) == STABLE  # mean 1500 = limit
    out = classify_run(thermo([1000.0, 2002.0]), None, T_SET, SETTINGS, 96)
    assert out == Outcome("fail", "mean temperature 1501.0 K exceeds 1.5 x 1000 K = 1500.0 K", None)


def test_a_ramp_reads_windows_against_the_moving_set_point():
    # set point 1000 -> 1400 K over five rows; the temperature follows it, then overheats in the
    # window of rows 3-4 (mean 2500 K > 1.5 x mean set point 1350 K = 2025 K). The whole-run mean
    # (1660 K) is above 1.5 x 1000 K, which a constant set point would call a fail from the start.
    temps = [1000.0, 1100.0, 1200.0, 2000.0, 3000.0]
    set_point = np.array([1000.0, 1100.0, 1200.0, 1300.0, 1400.0])
    out = classify_run(thermo(temps), None, T_SET, SETTINGS, 96, set_point_K=set_point, window_rows=2)
    assert out == Outcome("fail", "mean temperature over 2 thermo rows up to step 40 exceeds 1.5 x the mean "
                                  "set point", None, 40)
    # one-row windows: row 3 (2000 K > 1950 K) is the first hot one
    out = classify_run(thermo(temps), None, T_SET, SETTINGS, 96, set_point_K=set_point)
    assert (out.classification, out.fail_step) == ("fail", 30)
    assert out.reason.startswith("mean temperature over 1 thermo rows up to step 30")
    # the temperature follows the ramp: no window is hot, the run is stable
    calm = classify_run(thermo(set_point.tolist()), None, T_SET, SETTINGS, 96, set_point_K=set_point,
                        window_rows=2)
    assert calm == STABLE
    # under a moving set point the whole-run mean against T_SET is not the rule
    assert classify_run(thermo([1600.0] * 5), None, T_SET, SETTINGS, 96,
                        set_point_K=np.full(5, 1200.0)) == STABLE


def test_atoms_closer_than_rmin_are_a_fail_at_that_snapshot_and_at_rmin_are_not(tmp_path):
    dump = tmp_path / "dump.lammpstrj"
    write_dump(dump, [(0, _pair(2.0)), (10, _pair(1.0)), (20, _pair(0.75)), (30, _pair(0.5))])
    out = classify_run(thermo([T_SET] * 4, natoms=3), dump, T_SET, SETTINGS, 3)
    assert out == Outcome("fail", "atoms 0.750 A apart at step 20 (< rmin_fail_A 1 A)", None, 20)


def test_non_finite_positions_are_a_fail_at_that_snapshot(tmp_path):
    dump = tmp_path / "dump.lammpstrj"
    bad = _pair(2.0)
    bad[2, 1] = np.nan
    write_dump(dump, [(0, _pair(2.0)), (10, bad), (20, _pair(0.5))])
    out = classify_run(thermo([T_SET] * 3, natoms=3), dump, T_SET, SETTINGS, 3)
    assert out == Outcome("fail", "non-finite positions in the snapshot at step 10", None, 10)


def test_rmin_zero_turns_the_distance_rule_off_but_not_the_finiteness_check(tmp_path):
    off = partial(MDSettings, {"temp_fail_factor": 1.5, "fmax_crash_eV_per_A": 100.0, "rmin_fail_A": 0.0})
    dump = tmp_path / "dump.lammpstrj"
    bad = _pair(0.2)
    bad[0, 0] = np.inf
    write_dump(dump, [(0, _pair(0.2)), (10, _pair(0.1)), (20, bad)])
    out = classify_run(thermo([T_SET] * 3, natoms=3), dump, T_SET, off, 3)
    assert out == Outcome("fail", "non-finite positions in the snapshot at step 20", None, 20)


@pytest.mark.parametrize(("rmin", "distance", "verdict"), [(2.5, 2.4, "fail"), (0.3, 0.25, "fail"),
                                                       (0.3, 0.35, "stable")])
def test_the_distance_rule_searches_out_to_rmin(tmp_path, rmin, distance, verdict):
    dump = tmp_path / "dump.lammpstrj"
    write_dump(dump, [(0, _pair(distance))])
    rule = partial(MDSettings, {"rmin_fail_A": rmin})
    out = classify_run(thermo([T_SET], natoms=3), dump, T_SET, rule, 3)
    assert (out.classification, out.fail_step) == (verdict, 0 if verdict == "fail" else None)


def test_one_atom_has_no_interatomic_distance_even_with_its_images_in_range():
    assert min_distance_A(np.array([[1.0, 2.0, 3.0]]), np.eye(3) * 10.0, [True] * 3, 12.0) == np.inf


def test_halt_reasons_in_full():
    kw = {"n_atoms": 90, "n_atoms_initial": 96, "fmax_eV_per_A": 2500.0, "fmax_crash_eV_per_A": 1000.0}
    assert halt_crash(5, HALT_NONFINITE, **kw) == CrashInfo(5, "non-finite model energy or forces")
    assert halt_crash(6, HALT_LOST_ATOMS | HALT_NONFINITE, **kw).reason == (
        "lost atoms: 90 of 96 left; non-finite model energy or forces")
    assert halt_crash(7, HALT_FORCE, **kw).reason == "max |F| 2500 eV/A above fmax_crash_eV_per_A 1000"
