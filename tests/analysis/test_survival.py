"""Time to failure: the endpoint of each run, Kaplan-Meier, and the seed-stratified Cox model, on hand-built
runs with answers computed independently (the product-limit formula, a partial likelihood maximised here)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from study_builders import FINDINGS_DT_FS, FINDINGS_STEPS, study_table_a4

from gnnff_stability.report.survival import (
    MIN_CLUSTERS,
    hazard_ratio,
    kaplan_meier,
    kaplan_meier_figure,
    run_endpoints,
)

_CELL = {"model": "allegro", "family": "allegro", "layers": 3, "ratio": 1.55, "temp_K": 1200}


def _runs(records):
    return pd.DataFrame([_CELL | r for r in records])


def test_each_classification_gives_its_time():
    """crash: crash_step; fail: fail_step, else steps_done; stable: censored at steps_done (or the
    arena fraction x steps planned); unscored runs are left out; ps = steps x dt_fs / 1000."""
    table = _runs([
        {"method": "b", "seed": 0, "classification": "crash", "crash_step": 640.0, "steps_done": 640},
        {"method": "b", "seed": 0, "classification": "fail", "fail_step": 900.0, "steps_done": 2000},
        {"method": "b", "seed": 0, "classification": "fail", "fail_step": np.nan, "steps_done": 2000},
        {"method": "b", "seed": 1, "classification": "stable", "steps_done": 2000},
        {"method": "b", "seed": 1, "classification": "stable", "steps_done": np.nan,
         "ttf_arena_fraction": 1.0},
        {"method": "b", "seed": 1, "classification": np.nan, "steps_done": np.nan},
    ])
    ends = run_endpoints(table, dt_fs=0.25, steps_planned=2000)
    assert ends["event"].tolist() == [True, True, True, False, False]
    assert ends["time_steps"].tolist() == [640.0, 900.0, 2000.0, 2000.0, 2000.0]
    np.testing.assert_allclose(ends["time_ps"], [0.16, 0.225, 0.5, 0.5, 0.5])


def test_bad_time_step_is_named():
    with pytest.raises(ValueError, match="dt_fs must be a positive"):
        run_endpoints(_runs([{"method": "b", "seed": 0, "classification": "stable"}]), dt_fs=0.0,
                      steps_planned=10)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['classification'\]"):
        run_endpoints(_runs([{"method": "b", "seed": 0}]), dt_fs=1.0, steps_planned=10)


def test_kaplan_meier_is_the_product_limit():
    """Events at 1 and 3 ps, censored at 2 and 4: S = 3/4 from 1, 3/4 x 1/2 = 3/8 from 3; the band
    contains the estimate and has width wherever S < 1."""
    ends = pd.DataFrame({"method": "b", "time_ps": [1.0, 2.0, 3.0, 4.0], "event": [True, False, True, False]})
    km = kaplan_meier(ends).set_index("time_ps")
    np.testing.assert_allclose(km.loc[[0.0, 1.0, 2.0, 3.0, 4.0], "survival"], [1, 0.75, 0.75, 0.375, 0.375])
    inside = km[km["survival"] < 1]
    assert (inside["lo"] < inside["survival"]).all() and (inside["survival"] < inside["hi"]).all()


def _stratified_cox(frame: pd.DataFrame) -> tuple[float, float]:
    """beta-hat and the likelihood-ratio p of a seed-stratified Cox model with one binary covariate and
    no tied event times, by maximising the partial likelihood written out here."""
    def loglik(beta: float) -> float:
        total = 0.0
        for _, s in frame.groupby("seed"):
            t, e, x = s["time_ps"].to_numpy(), s["event"].to_numpy(), s["arm"].to_numpy()
            for i in np.flatnonzero(e):
                risk = t >= t[i]
                total += beta * x[i] - math.log(np.exp(beta * x[risk]).sum())
        return total
    beta = optimize.minimize_scalar(lambda b: -loglik(b), bounds=(-10, 10), method="bounded",
                                    options={"xatol": 1e-9}).x
    return float(beta), float(stats.chi2.sf(2.0 * (loglik(beta) - loglik(0.0)), 1))


def _exponential_arms(n_seeds: int, per_arm: int, hr: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_seeds):
        frailty = rng.lognormal(0.0, 0.3)
        for method, scale in (("b", 1.0), ("m", hr)):
            t = rng.exponential(1.0 / (frailty * scale), per_arm)
            rows += [{"method": method, "seed": s, "time_ps": min(v, 2.0), "event": v < 2.0} for v in t]
    frame = pd.DataFrame(rows)
    frame["arm"] = (frame["method"] == "m").astype(float)
    return frame


def test_hazard_ratio_is_the_stratified_partial_likelihood_maximum():
    frame = _exponential_arms(3, 8, 0.5, seed=4)
    beta, p = _stratified_cox(frame)
    out = hazard_ratio(frame, "b", "m")
    assert out["hr"] == pytest.approx(math.exp(beta), rel=1e-4)
    assert out["p"] == pytest.approx(p, rel=1e-3)
    assert out["hr_lo"] < out["hr"] < out["hr_hi"] and out["errors"] == "model-based"
    assert (out["runs_b"], out["events_b"]) == (24, int(frame.loc[frame.method == "b", "event"].sum()))


def test_cluster_robust_errors_from_ten_seeds():
    out = hazard_ratio(_exponential_arms(MIN_CLUSTERS, 3, 0.5, seed=5), "b", "m")
    assert out["errors"] == "cluster-robust" and out["seeds"] == MIN_CLUSTERS
    assert out["hr_lo"] < out["hr"] < out["hr_hi"]


def test_an_arm_without_events_has_no_hazard_ratio():
    ends = run_endpoints(study_table_a4(), dt_fs=FINDINGS_DT_FS, steps_planned=FINDINGS_STEPS)
    one = hazard_ratio(ends[ends["ratio"] == 1.10], "baseline", "corr")
    assert math.isnan(one["hr"]) and one["note"] == "no events in baseline: no hazard ratio"
    assert 0.0 < one["p"] < 1.0  # the likelihood-ratio test still exists
    none = hazard_ratio(ends[ends["ratio"] == 2.00], "baseline", "corr")
    assert math.isnan(none["hr"]) and math.isnan(none["p"]) and none["note"] == "no events in either arm"
    both = hazard_ratio(ends[ends["ratio"] == 1.55], "baseline", "corr")
    assert (both["events_baseline"], both["events_corr"]) == (2, 1) and both["hr"] < 1.0


def test_figure_is_written(tmp_path):
    ends = run_endpoints(study_table_a4(), dt_fs=FINDINGS_DT_FS, steps_planned=FINDINGS_STEPS)
    path = kaplan_meier_figure(ends, tmp_path / "km.png", axis="Hf:O")
    assert path.stat().st_size > 10_000
    with pytest.raises(ValueError, match="no scored run"):
        kaplan_meier_figure(ends.iloc[:0], tmp_path / "empty.png", axis="Hf:O")
