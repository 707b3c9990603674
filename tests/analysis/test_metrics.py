"""The benchmark stability metrics on hand-built thermo tables with closed-form answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from gnnff_stability.analysis.metrics import (
    first_hot_window,
    nve_drift,
    ramp_failure,
    ramp_set_point_K,
    write_nve_drift,
    write_ramp_failure,
)
from gnnff_stability.report.beyond import table_s1, table_s1_markdown
from gnnff_stability.settings import MDSettings, NVEMetricSettings, RampMetricSettings
from partial_settings import partial

N_ATOMS = 96
DT_FS = 0.25


def _nve_table(equil: int, nve: int, every: int, slope_eV_per_ps: float, warm_slope: float,
               warmup: float) -> pd.DataFrame:
    """Thermo rows: random total energy under the thermostat, then NVE with a transient slope over the
    warm-up and ``slope_eV_per_ps`` after it; KE a sinusoid over whole periods of the NVE part."""
    step = np.arange(0, equil + nve + 1, every)
    t_ps = step * DT_FS / 1000.0
    rng = np.random.default_rng(0)
    etot = -800.0 + 5.0 * rng.standard_normal(step.size)  # Langevin part: anything
    t0 = equil * DT_FS / 1000.0
    t_w = t0 + warmup * nve * DT_FS / 1000.0
    in_nve = step >= equil
    e_w = -790.0 + warm_slope * (t_w - t0)
    etot[in_nve] = np.where(t_ps[in_nve] < t_w, -790.0 + warm_slope * (t_ps[in_nve] - t0),
                            e_w + slope_eV_per_ps * (t_ps[in_nve] - t_w))
    ke = np.full(step.size, 10.0)
    phase = 2 * np.pi * 4 * (step[in_nve] - equil) / nve  # four whole periods over the NVE part
    ke[in_nve] = 10.0 + 0.3 * np.sin(phase)
    return pd.DataFrame({"step": step, "etotal_eV": etot, "ke_eV": ke})


def test_nve_drift_is_the_slope_after_the_warmup_per_atom():
    slope = 0.0192  # eV/ps over 96 atoms: 0.2 meV/atom/ps
    table = _nve_table(equil=400, nve=2000, every=10, slope_eV_per_ps=slope, warm_slope=3.0,
                       warmup=0.2)
    out = nve_drift(table, N_ATOMS, DT_FS, equil_steps=400, warmup_fraction=0.2)
    assert out["drift_meV_per_atom_per_ps"] == pytest.approx(1000 * slope / N_ATOMS, rel=1e-9)
    assert out["drift_meV_per_atom_per_ps"] == pytest.approx(0.2, rel=1e-9)
    assert out["n_fit"] == 161  # steps 800 .. 2400 every 10
    assert out["nve_ps"] == pytest.approx(0.5)
    # |E(2400) - E(400)| = warm-up rise 3.0 eV/ps x 0.1 ps + 0.0192 eV/ps x 0.4 ps
    delta = 3.0 * 0.1 + slope * 0.4
    assert out["delta_etotal_eV"] == pytest.approx(delta, rel=1e-9)
    # KE = 10 + 0.3 sin over 4 whole periods sampled 200 times (plus the closing row at phase 8 pi)
    phase = 2 * np.pi * 4 * np.arange(0, 2001, 10) / 2000
    assert out["ke_std_eV"] == pytest.approx(np.std(0.3 * np.sin(phase)), rel=1e-9)
    assert out["ke_std_eV"] == pytest.approx(0.3 / math.sqrt(2), rel=1e-2)
    # MLIPAudit's normalised drift: the least-squares slope through every NVE row (covariance over
    # variance, written out), times the NVE duration, over std(KE); not the end-point difference
    nve_rows = table[table["step"] >= 400]
    t = nve_rows["step"].to_numpy() * DT_FS / 1000.0
    e = nve_rows["etotal_eV"].to_numpy()
    fit_slope = np.sum((t - t.mean()) * (e - e.mean())) / np.sum((t - t.mean()) ** 2)
    assert out["fit_delta_etotal_eV"] == pytest.approx(abs(fit_slope) * 0.5, rel=1e-9)
    assert out["normalised_drift"] == pytest.approx(abs(fit_slope) * 0.5 / out["ke_std_eV"], rel=1e-9)
    assert abs(fit_slope) * 0.5 < 0.9 * delta  # the fit reads less than the end-point difference


def test_normalised_drift_of_a_straight_line_with_end_noise():
    """E_total = -790 + 0.1 t exactly, but the last row is 0.2 eV off: the end-point difference
    doubles, the fitted drift moves by the last row's leverage only (closed form below)."""
    step = np.arange(0, 4001, 10)
    t = step * DT_FS / 1000.0  # 0 .. 1 ps, 401 rows
    etot = -790.0 + 0.1 * t
    etot[-1] += 0.2
    ke = 10.0 + 0.5 * np.cos(2 * np.pi * 5 * t)  # five whole periods: std 0.5 / sqrt 2 (almost)
    out = nve_drift(pd.DataFrame({"step": step, "etotal_eV": etot, "ke_eV": ke}), N_ATOMS, DT_FS,
                    equil_steps=0, warmup_fraction=0.0)
    assert out["delta_etotal_eV"] == pytest.approx(0.3, rel=1e-9)
    # a bump d on the last row adds d (t_n - t_mean) / sum (t - t_mean)^2 to the slope
    extra = 0.2 * (t[-1] - t.mean()) / np.sum((t - t.mean()) ** 2)
    assert out["fit_delta_etotal_eV"] == pytest.approx((0.1 + extra) * 1.0, rel=1e-9)
    assert out["normalised_drift"] == pytest.approx((0.1 + extra) / np.std(ke), rel=1e-9)


def test_nve_drift_without_warmup_sees_the_transient():
    table = _nve_table(equil=400, nve=2000, every=10, slope_eV_per_ps=0.0, warm_slope=3.0,
                       warmup=0.2)
    kept = nve_drift(table, N_ATOMS, DT_FS, equil_steps=400, warmup_fraction=0.2)
    raw = nve_drift(table, N_ATOMS, DT_FS, equil_steps=400, warmup_fraction=0.0)
    assert kept["drift_meV_per_atom_per_ps"] == pytest.approx(0.0, abs=1e-9)
    assert raw["drift_meV_per_atom_per_ps"] > 0.5  # the 3 eV/ps transient leaks into the fit


def test_nve_drift_of_a_run_too_short_is_nan_and_bad_input_raises():
    table = _nve_table(equil=400, nve=2000, every=10, slope_eV_per_ps=0.0, warm_slope=0.0,
                       warmup=0.2)
    out = nve_drift(table[table["step"] <= 410], N_ATOMS, DT_FS, equil_steps=400,
                    warmup_fraction=0.2)
    assert math.isnan(out["drift_meV_per_atom_per_ps"]) and out["n_fit"] == 0
    with pytest.raises(ValueError, match="warmup_fraction"):
        nve_drift(table, N_ATOMS, DT_FS, equil_steps=400, warmup_fraction=1.0)
    with pytest.raises(ValueError, match="n_atoms"):
        nve_drift(table, 0, DT_FS, equil_steps=400, warmup_fraction=0.2)


def _ramp_table(hot_after: int | None) -> pd.DataFrame:
    step = np.arange(0, 3001, 10)
    sp = 300.0 + 2700.0 * step / 3000.0  # 300 + 9 i at row i
    temp = sp * np.where(hot_after is not None and step > (hot_after or 0), 2.0, 1.0)
    return pd.DataFrame({"step": step, "temp_K": temp})


def test_ramp_set_point_is_linear_in_the_step():
    assert ramp_set_point_K(np.array([0, 1500, 3000]), 300, 3000, 3000).tolist() == [300, 1650, 3000]


def test_ramp_failure_temperature_from_a_hot_window():
    table = _ramp_table(hot_after=1500)
    # one-row windows: the first row at twice its set point is step 1510
    out = ramp_failure(table, t_start_K=300, t_stop_K=3000, steps=3000, temp_fail_factor=1.5,
                       window_rows=1)
    assert (out["failure_step"], out["failure_kind"]) == (1510, "fail")
    assert out["failure_set_point_K"] == pytest.approx(300 + 9 * 151)
    assert out["completed_fraction"] == 1.0 and not out["survived"]
    # ten-row windows ending at row j (rows 151.. are hot, set point 300 + 9 i):
    # j = 154: T sum 9765 + 2 x 6690 = 23145 <= 1.5 x 16455 = 24682.5; j = 155: 8160 + 2 x 8385 = 24930
    # > 1.5 x 16545 = 24817.5. First hot window ends at step 1550, set point 1695 K.
    out = ramp_failure(table, t_start_K=300, t_stop_K=3000, steps=3000, temp_fail_factor=1.5,
                       window_rows=10)
    assert out["failure_step"] == 1550 and out["failure_set_point_K"] == pytest.approx(1695.0)


def test_ramp_failure_takes_the_earliest_of_crash_and_fail():
    table = _ramp_table(hot_after=1500)
    crashed = table[table["step"] <= 900]
    out = ramp_failure(crashed, t_start_K=300, t_stop_K=3000, steps=3000, temp_fail_factor=1.5,
                       window_rows=10, crash_step=900, steps_done=900)
    assert (out["failure_step"], out["failure_kind"]) == (900, "crash")
    assert out["failure_set_point_K"] == pytest.approx(1110.0)
    # kinetic temperature: the ten rows before step 900 (800 .. 890) track 300 + 0.9 step
    assert out["failure_kinetic_K"] == pytest.approx(300 + 0.9 * 845)
    assert out["completed_fraction"] == pytest.approx(0.3)
    # a too-close snapshot at step 1200 (from status.json's fail_step) comes before the hot window
    out = ramp_failure(table, t_start_K=300, t_stop_K=3000, steps=3000, temp_fail_factor=1.5,
                       window_rows=10, fail_step=1200)
    assert out["failure_step"] == 1200 and out["failure_set_point_K"] == pytest.approx(1380.0)


def test_ramp_failure_reports_the_lagging_kinetic_temperature():
    """A run 450 K behind its set point that crashes at step 2000 (set point 2100 K): the kinetic
    temperature at failure is the mean over the five rows before it, 450 K below their set points."""
    table = _ramp_table(hot_after=None)
    table["temp_K"] = table["temp_K"] - 450.0
    crashed = table[table["step"] <= 2000]
    out = ramp_failure(crashed, t_start_K=300, t_stop_K=3000, steps=3000, temp_fail_factor=1.5,
                       window_rows=5, crash_step=2000)
    assert out["failure_set_point_K"] == pytest.approx(2100.0)
    assert out["failure_kinetic_K"] == pytest.approx(300 + 0.9 * 1970 - 450)
    assert math.isnan(ramp_failure(table, t_start_K=300, t_stop_K=3000, steps=3000,
                                   temp_fail_factor=1.5, window_rows=5)["failure_kinetic_K"])


def test_ramp_length_and_damping_settings():
    """The rate sets the length: 2700 K at 1000 K/ps is 2.7 ps, 10,800 steps of 0.25 fs; the ramp's own
    damping replaces md.damp_fs in its MD settings."""
    from gnnff_stability.md.metric_runs import ramp_md_settings

    md = partial(MDSettings, {"dt_fs": 0.25, "damp_fs": 100.0})
    rated = partial(RampMetricSettings, {"rate_K_per_ps": 1000.0, "damp_fs": 20.0})
    assert rated.ramp_steps(0.25) == 10_800
    assert (ramp_md_settings(md, rated).steps, ramp_md_settings(md, rated).damp_fs) == (10_800, 20.0)
    plain = partial(RampMetricSettings, {"steps": 1200})
    assert (ramp_md_settings(md, plain).steps, ramp_md_settings(md, plain).damp_fs) == (1200, 100.0)


def test_ramp_that_tracks_its_set_point_survives():
    out = ramp_failure(_ramp_table(hot_after=None), t_start_K=300, t_stop_K=3000, steps=3000,
                       temp_fail_factor=1.5, window_rows=10)
    assert out["survived"] and out["failure_step"] is None and math.isnan(out["failure_set_point_K"])


def test_first_hot_window_checks_its_input():
    with pytest.raises(ValueError, match="window_rows"):
        first_hot_window(np.arange(3), np.ones(3), np.ones(3), 1.5, 0)
    with pytest.raises(ValueError, match="equal-length"):
        first_hot_window(np.arange(3), np.ones(2), np.ones(3), 1.5, 1)
    # a run shorter than one window is one window
    assert first_hot_window(np.array([0, 10]), np.array([100.0, 400.0]), np.array([100.0, 100.0]),
                            1.5, 10) == 10


def _status(classification: str, steps: int, **extra) -> dict:
    return {"classification": classification, "reason": "hand-built", "crash_step": None,
            "fail_step": None, "steps_planned": steps, "steps_done": steps, "n_atoms_initial": N_ATOMS,
            **extra}


def test_metric_files_and_table_s1(tmp_path):
    """Files written by the rules' functions, read back into Table S1 (one row per trained model)."""
    md = partial(MDSettings, {"dt_fs": DT_FS, "thermo_every": 10})
    nve_s = partial(NVEMetricSettings, {"equil_steps": 400, "steps": 2000})
    ramp_s = partial(RampMetricSettings, {"steps": 3000, "window_steps": 100})
    a = tmp_path / "a"
    a.mkdir()
    _nve_table(400, 2000, 10, 0.0192, 3.0, 0.2).to_csv(a / "nve.csv", index=False)
    (a / "nve_status.json").write_text(json.dumps(_status("stable", 2400)))
    nve = write_nve_drift(a / "nve.csv", a / "nve_status.json", a / "nve_drift.json", md, nve_s)
    assert nve["drift_meV_per_atom_per_ps"] == pytest.approx(0.2, rel=1e-9)
    # the ramp crashed at step 900 (set point 1110 K); the thermo ends there
    _ramp_table(None).query("step <= 900").to_csv(a / "ramp.csv", index=False)
    (a / "ramp_status.json").write_text(json.dumps(
        _status("crash", 3000, crash_step=900, steps_done=900)))
    ramp = write_ramp_failure(a / "ramp.csv", a / "ramp_status.json", a / "ramp.json", md, ramp_s)
    assert ramp["failure_set_point_K"] == pytest.approx(1110.0)
    # ten-row windows (window_steps 100 / thermo_every 10) against a ramp hot from step 1500: 1695 K
    _ramp_table(1500).to_csv(a / "hot.csv", index=False)
    (a / "hot_status.json").write_text(json.dumps(_status("fail", 3000, fail_step=1550)))
    hot = write_ramp_failure(a / "hot.csv", a / "hot_status.json", a / "hot.json", md, ramp_s)
    assert hot["failure_set_point_K"] == pytest.approx(1695.0) and hot["failure_kind"] == "fail"
    # 2700 K over 3000 steps of 0.25 fs: 3600 K/ps; md's 100 fs damping: settled lag 3600 x 0.1 / 2
    assert hot["rate_K_per_ps"] == pytest.approx(3600.0)
    assert hot["steady_lag_K"] == pytest.approx(180.0)

    keys = {"model": "nequip", "layers": 2, "seed": 0, "family": "nequip"}
    runs = pd.DataFrame([
        # two MD runs of one trained model (same metric files), one model without results
        {**keys, "method": "baseline", "ratio": 2.0, "nve": str(a / "nve_drift.json"),
         "ramp": str(a / "ramp.json")},
        {**keys, "method": "baseline", "ratio": 1.1, "nve": str(a / "nve_drift.json"),
         "ramp": str(a / "ramp.json")},
        {**keys, "method": "corr", "ratio": 2.0, "nve": str(tmp_path / "none.json"), "ramp": None},
    ])
    table = table_s1(runs)
    assert table["method"].tolist() == ["baseline", "corr"]
    base, corr = table.iloc[0], table.iloc[1]
    assert base["drift_meV_per_atom_per_ps"] == pytest.approx(0.2, rel=1e-9)
    assert base["ramp_failure_K"] == pytest.approx(1110.0)
    assert base["ramp_failure_kinetic_K"] == pytest.approx(300 + 0.9 * 845)
    assert base["ramp_rate_K_per_ps"] == pytest.approx(3600.0)
    assert base["nve_protocol"] == "short window"
    assert base["ramp_completed_fraction"] == pytest.approx(0.3)
    assert (base["nve_classification"], base["ramp_classification"]) == ("stable", "crash")
    assert math.isnan(corr["drift_meV_per_atom_per_ps"]) and corr["nve_classification"] == ""
    text = table_s1_markdown(table)
    assert text.startswith("## Table S1") and "| 1110 |" in text and "| 0.2000 |" in text


def test_lambench_protocol_settings_and_label(tmp_path):
    """LAMBench's NVE protocol (config/paper.yaml): no Langevin part, 10,000 steps of 1 fs; the drift is
    read at 1 fs (a 0.0192 eV/ps slope over 96 atoms is 0.2 meV/atom/ps only at the right timestep)
    and the record says which protocol it is."""
    from gnnff_stability.md.metric_runs import nve_md_settings

    md = partial(MDSettings, {"dt_fs": 0.25, "thermo_every": 100})
    lam = partial(NVEMetricSettings, {"temp_K": 300.0, "equil_steps": 0, "steps": 10_000,
                                          "dt_fs": 1.0, "warmup_fraction": 0.2})
    assert lam.is_lambench and not partial(NVEMetricSettings, {}).is_lambench
    run = nve_md_settings(md, lam)
    assert (run.steps, run.dt_fs) == (10_000, 1.0)
    step = np.arange(0, 10_001, 100)
    t_ps = step * 1.0 / 1000.0
    pd.DataFrame({"step": step, "etotal_eV": -790.0 + 0.0192 * t_ps,
                  "ke_eV": 3.7 + 0.1 * np.sin(2 * np.pi * step / 1000)}).to_csv(tmp_path / "t.csv",
                                                                               index=False)
    (tmp_path / "s.json").write_text(json.dumps(_status("stable", 10_000)))
    out = write_nve_drift(tmp_path / "t.csv", tmp_path / "s.json", tmp_path / "o.json", md, lam)
    assert out["drift_meV_per_atom_per_ps"] == pytest.approx(0.2, rel=1e-9)
    assert (out["protocol"], out["dt_fs"], out["equil_steps"]) == ("lambench", 1.0, 0)
