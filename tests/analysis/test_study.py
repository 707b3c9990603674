"""The paired method contrast, its intervals, the study table and the command line, on hand-built runs with
known answers; the hierarchical bootstrap kept to show its under-coverage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from study_builders import FINDINGS_DT_FS, FINDINGS_STEPS, study_table_a4

from gnnff_stability.report.power import schoenfeld_mde
from gnnff_stability.report.study import (
    contrast_markdown,
    failure_temperature_contrast,
    hierarchical_bootstrap,
    main,
    method_contrast,
    newcombe_interval,
    paired_interval,
    study_markdown,
    study_table,
    wilson_interval,
    write_study,
)

REPO = Path(__file__).resolve().parents[2]


def test_two_groups_of_one_value_give_the_closed_form_distribution():
    """Two groups, one value each (a, b): the bootstrap mean is a, (a+b)/2 or b with probability 1/4,
    1/2, 1/4."""
    rng = np.random.default_rng(1)
    boots = hierarchical_bootstrap(pd.Series([0.0, 1.0]), pd.Series([0, 1]), 20000, rng)
    values, counts = np.unique(boots, return_counts=True)
    np.testing.assert_allclose(values, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(counts / counts.sum(), [0.25, 0.5, 0.25], atol=0.01)


def test_runs_of_one_seed_do_not_shrink_the_interval():
    """Three seeds whose runs agree within a seed: the interval is that of three values, however many
    velocity seeds each has (a flat bootstrap over runs would shrink it with their number)."""
    rng = np.random.default_rng(2)
    seeds = pd.Series(np.repeat([0, 1, 2], 30))
    values = pd.Series(np.repeat([0.0, 0.0, 1.0], 30))
    boots = hierarchical_bootstrap(values, seeds, 5000, rng)
    lo, hi = np.quantile(boots, [0.025, 0.975])
    assert (lo, hi) == (0.0, 1.0)  # all-0 and all-1 draws each have probability 1/27 > 2.5 %
    flat = np.random.default_rng(3).choice(values.to_numpy(), size=(5000, 90)).mean(axis=1)
    assert np.quantile(flat, 0.975) - np.quantile(flat, 0.025) < 0.25


def _a4(rows):
    keys = ("model", "layers", "method", "seed", "vseed", "ratio", "temp_K", "classification", "s_index")
    return pd.DataFrame([dict(zip(keys, r)) | {"family": r[0]} for r in rows])  # presets named as families


def test_contrast_counts_and_differences():
    """Every seed gives the same difference (all baseline runs fail, no corr run does): the t-interval
    would have no width, so the Newcombe interval of the pooled counts is reported; S differs by 0.1."""
    rows = []
    for seed in range(3):
        for vseed in range(2):
            rows.append(("allegro", 3, "baseline", seed, vseed, 1.55, 1200, "fail", 0.8))
            rows.append(("allegro", 3, "corr", seed, vseed, 1.55, 1200, "stable", 0.9))
    rows.append(("allegro", 3, "corr", 0, 0, 1.10, 1200, "stable", 0.9))  # no baseline there: left out
    rows.append(("allegro", 3, "baseline", 0, 2, 1.55, 1200, float("nan"), float("nan")))  # unscored
    table = method_contrast(_a4(rows), "baseline", "corr")
    assert len(table) == 1
    r = table.iloc[0]
    assert (r.n_baseline, r.seeds_baseline, r.n_corr, r.pairs) == (6, 3, 6, 3)
    assert (r.unstable_baseline, r.unstable_corr, r.d_unstable) == (1.0, 0.0, -1.0)
    assert (r.d_unstable_lo, r.d_unstable_hi) == pytest.approx(newcombe_interval(0, 6, 6, 6))
    assert r.d_unstable_lo < -1.0 + 1e-9 < r.d_unstable_hi and r.d_unstable_how.startswith("Newcombe")
    assert r.d_s_index == pytest.approx(0.1) and r.d_s_index_how == "t, 3 seeds"
    assert "-1.00 [-1.00, -0.45]" in contrast_markdown(table, "baseline", "corr", axis="Hf:O")


def test_wilson_and_newcombe_have_width_at_zero_counts():
    """0/9: Wilson's interval is [0, z^2 / (9 + z^2)]; 0/9 against 0/9: Newcombe's is +- that bound."""
    z2 = stats.norm.ppf(0.975) ** 2
    lo, hi = wilson_interval(0, 9)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(z2 / (9 + z2))
    assert newcombe_interval(0, 9, 0, 9) == pytest.approx((-z2 / (9 + z2), z2 / (9 + z2)))
    # 2/9 against 1/9: Newcombe's closed form (his method 10) from the two Wilson intervals
    l1, u1 = wilson_interval(1, 9)
    l0, u0 = wilson_interval(2, 9)
    d = 1 / 9 - 2 / 9
    assert newcombe_interval(1, 9, 2, 9) == pytest.approx(
        (d - np.hypot(1 / 9 - l1, u0 - 2 / 9), d + np.hypot(u1 - 1 / 9, 2 / 9 - l0)))


def test_paired_t_interval_closed_form():
    """Differences 0.1, 0.2, 0.6: mean 0.3, SD 0.2646, t_{0.975, 2} = 4.3027."""
    mean, lo, hi, how = paired_interval(np.array([0.1, 0.2, 0.6]))
    half = 4.302653 * np.std([0.1, 0.2, 0.6], ddof=1) / np.sqrt(3)
    assert (mean, lo, hi) == pytest.approx((0.3, 0.3 - half, 0.3 + half)) and how == "t, 3 seeds"
    assert paired_interval(np.array([0.4]))[3] == "1 seed"


def test_findings_study_is_paired_within_seeds():
    """The study of docs/findings.md: all failures come from training seed 0, so the seed-level
    differences in share are (-1/3, 0, 0) on 1:1.55 and (+1/3, 0, 0) on 1:1.1, and 0/9 against 0/9 on 1:2
    gets a Newcombe interval of non-zero width."""
    table = method_contrast(study_table_a4(), "baseline", "corr").set_index("ratio")
    for ratio, diffs in ((1.55, [-1 / 3, 0, 0]), (1.10, [1 / 3, 0, 0])):
        mean, lo, hi, _ = paired_interval(np.array(diffs))
        assert (table.loc[ratio, "d_unstable"], table.loc[ratio, "d_unstable_lo"],
                table.loc[ratio, "d_unstable_hi"]) == pytest.approx((mean, lo, hi))
    assert table.loc[1.55, "events_baseline"] == 2 and table.loc[1.55, "unstable_baseline_lo"] > 0
    r = table.loc[2.00]
    assert r.d_unstable == 0 and r.d_unstable_hi - r.d_unstable_lo > 0.5


def test_failure_temperature_contrast_is_paired():
    s1 = pd.DataFrame({"model": "allegro", "layers": 3, "method": ["baseline"] * 4 + ["corr"] * 4,
                       "seed": [0, 1, 2, 3] * 2,
                       "ramp_failure_kinetic_K": [2000, 2100, 2300, np.nan, 2100, 2300, 2350, 2500]})
    r = failure_temperature_contrast(s1, "baseline", "corr").iloc[0]
    mean, lo, hi, _ = paired_interval(np.array([100.0, 200.0, 50.0]))  # seed 3's baseline survived
    assert (r.d_failure_K, r.d_failure_K_lo, r.d_failure_K_hi, r.pairs) == pytest.approx((mean, lo, hi, 3))
    assert (r.failed_baseline, r.failed_corr) == (3, 4)
    with pytest.raises(ValueError, match="lacks the column"):
        failure_temperature_contrast(s1.drop(columns="ramp_failure_kinetic_K"), "baseline", "corr")


def test_study_table_and_files(tmp_path):
    s1 = pd.DataFrame({"model": "allegro", "layers": 3, "method": ["baseline"] * 3 + ["corr"] * 3,
                       "seed": [0, 1, 2] * 2, "ramp_failure_kinetic_K": [2000, 2100, 2300, 2100, 2300, 2350]})
    table = study_table(study_table_a4(), "baseline", ["corr"], dt_fs=FINDINGS_DT_FS,
                        steps_planned=FINDINGS_STEPS, table_s1=s1).set_index("ratio")
    assert table.loc[1.55, ["events_baseline", "events_method"]].tolist() == [2, 1]
    assert table.loc[1.55, "hr"] < 1 and np.isnan(table.loc[2.00, "hr"])
    assert table.loc[1.55, "d_failure_K"] == pytest.approx(350 / 3)
    assert table.loc[1.55, "mde_hr"] == pytest.approx(schoenfeld_mde(3))
    assert table.loc[1.55, "mde_failure_K"] > 0
    md = study_markdown(table.reset_index(), axis="Hf:O")
    assert "no events in either arm" in md and "+117 [" in md
    paths = write_study(study_table_a4(), "baseline", ["corr"], tmp_path, dt_fs=FINDINGS_DT_FS,
                        steps_planned=FINDINGS_STEPS, axis="Hf:O")
    assert all(p.exists() for p in paths.values())
    assert len(pd.read_csv(paths["csv"])) == 3


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="'sam' has no runs"):
        method_contrast(_a4([("a", 1, "baseline", 0, 0, 1.1, 1200, "stable", 0.9)]), "baseline", "sam")
    with pytest.raises(SystemExit, match="does not exist"):
        main(["/nonexistent/tableA4.csv", "corr"])


def test_command_line(tmp_path, capsys):
    path = tmp_path / "tableA4.csv"
    study_table_a4().to_csv(path, index=False)
    assert main([str(path), "corr"]) == 0
    assert "| Allegro L3 | 1:1.55 | 1200 | 9 (3) / 9 (3) |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--out needs --dt-fs and --steps"):
        main([str(path), "corr", "--out", str(tmp_path / "study")])
    assert main([str(path), "corr", "--dt-fs", "0.25", "--steps", "2000",
                 "--out", str(tmp_path / "study")]) == 0
    assert "## Study table" in capsys.readouterr().out and (tmp_path / "study" / "km.png").exists()
