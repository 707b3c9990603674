"""Table 3 prints the benchmark's per-step overhead beside the campaign's epoch-time overhead."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from analysis_builders import HFO2
from test_analysis_tables import partial_results  # noqa: F401 (the fixture)

from gnnff_stability import paths
from gnnff_stability.report.overhead import benchmark_mode, benchmark_overhead, read_overhead_benchmark
from gnnff_stability.report.tables import build_tables

# the columns bench_corr_overhead.py / bench_stabilisers.py write (a hand-made subset of their rows)
BENCH = pd.DataFrame([
    dict(benchmark="corr_overhead", family="nequip", size="paper", layers=4, device="cuda", mode="baseline",
         ratio=1.0, ratio_lo95=None, ratio_hi95=None, profiler_share=None),
    dict(benchmark="corr_overhead", family="nequip", size="paper", layers=4, device="cuda", mode="corr",
         ratio=1.01529, ratio_lo95=0.89988, ratio_hi95=1.09311, profiler_share=0.03772),
    dict(benchmark="corr_overhead", family="allegro", size="paper", layers=3, device="cuda", mode="corr",
         ratio=1.18244, ratio_lo95=1.06986, ratio_hi95=1.25713, profiler_share=0.13810),
    dict(benchmark="stabilisers", family="allegro", size="paper", layers=3, device="cuda", mode="sam",
         ratio=1.95, ratio_lo95=None, ratio_hi95=None, profiler_share=None),
])


def test_benchmark_mode_of_a_method():
    assert benchmark_mode("", None) == "baseline"
    assert benchmark_mode("corr", None) == "corr"
    assert benchmark_mode("sam", {"rho": 0.005, "adaptive": False}) == "sam"
    assert benchmark_mode("sam", {"rho": 0.5, "adaptive": True}) == "sam_adaptive"
    assert benchmark_mode("zbl", None) == "zbl"
    assert benchmark_mode("decomposition", None) == "decomposed"
    assert benchmark_mode("corr+sam", {"rho": 0.005}) is None  # a combination: no benchmark row
    assert benchmark_mode("corr", None, paper_main="") is None  # an ablation of the paper's loss


def test_benchmark_overhead_is_the_ratio_minus_one_in_percent():
    got = benchmark_overhead(BENCH, "allegro", 3, "corr")
    assert got["bench_overhead_pct"] == pytest.approx(18.244)
    assert got["bench_overhead_lo95"] == pytest.approx(6.986)
    assert got["bench_overhead_hi95"] == pytest.approx(25.713)
    assert got["bench_loss_share_pct"] == pytest.approx(13.81)
    assert (got["bench_device"], got["bench_size"]) == ("cuda", "paper")
    sam = benchmark_overhead(BENCH, "allegro", 3, "sam")
    assert sam["bench_overhead_pct"] == pytest.approx(95.0) and math.isnan(sam["bench_overhead_lo95"])
    # another layer count, a missing mode, no benchmark: empty cells, not a wrong model's number
    assert math.isnan(benchmark_overhead(BENCH, "allegro", 2, "corr")["bench_overhead_pct"])
    assert math.isnan(benchmark_overhead(BENCH, "allegro", 3, None)["bench_overhead_pct"])
    assert benchmark_overhead(None, "allegro", 3, "corr")["bench_device"] == ""


def test_a_csv_without_the_benchmark_columns_is_refused(tmp_path):
    bad = tmp_path / "bench.csv"
    pd.DataFrame([{"family": "nequip", "mode": "corr"}]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="ratio"):
        read_overhead_benchmark(bad)
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        read_overhead_benchmark(tmp_path / "missing.csv")


def test_table3_prints_the_benchmark_beside_the_epoch_overhead(partial_results, tmp_path):  # noqa: F811
    bench = tmp_path / "bench.csv"
    BENCH.to_csv(bench, index=False)
    out = tmp_path / "tables"
    t3 = build_tables(partial_results, paths.table_files(str(out)), overhead_benchmark=bench, material=HFO2)["table3"]
    nc = t3[(t3["model"] == "nequip") & (t3["method"] == "corr")].iloc[0]
    assert nc["overhead_pct"] == pytest.approx(5.0)  # epoch times 10.5 vs 10.0 s
    assert nc["bench_overhead_pct"] == pytest.approx(1.529)
    # the ablation corr_0e is a correlation loss on another feature selection than the benchmark's
    assert math.isnan(t3[t3["method"] == "corr_0e"].iloc[0]["bench_overhead_pct"])
    ac = t3[(t3["model"] == "allegro") & (t3["method"] == "corr")].iloc[0]
    assert ac["bench_overhead_pct"] == pytest.approx(18.244)
    md = (out / "table3.md").read_text()
    assert "+18.2 [+7.0, +25.7]" in md and "+1.5 [-10.0, +9.3]" in md
    assert "13.8" in md and "paper size, cuda" in md
    # without a benchmark the column is there and empty
    t3_none = build_tables(partial_results, paths.table_files(str(tmp_path / "t2")), material=HFO2)["table3"]
    assert t3_none["bench_overhead_pct"].isna().all()
    assert "no benchmark given" in (tmp_path / "t2" / "table3.md").read_text()


def test_table3_prints_the_label_budget_of_an_active_method():
    from gnnff_stability.report.markdown import table_markdown

    rows = pd.DataFrame([
        {"model": "allegro", "family": "allegro", "layers": 3, "method": "baseline", "label_budget": float("nan")},
        {"model": "allegro", "family": "allegro", "layers": 3, "method": "active", "label_budget": 31.0},
    ])
    md = table_markdown("table3", rows, [], material=HFO2)
    header, _, baseline, active = md.strip().splitlines()[-4:]
    column = header.split(" | ").index("reference labels (active learning)")
    assert active.split(" | ")[column] == "31" and baseline.split(" | ")[column] == "—"
