"""Grid expansion: the configuration's grid is the only list of runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from gnnff_stability import paths
from gnnff_stability.config import load_config, validate_config
from gnnff_stability.grid import METHOD_COLUMNS, RUN_KEYS, SETTINGS_COLUMNS, expand_grid, training_runs, with_paths

REPO = Path(__file__).resolve().parents[2]


def _config(**grid):
    base = {
        "grid": {"model": ["nq", "al"], "layers": {"nq": [2, 4], "al": [1]}, "method": ["baseline", "c1o", "cenv"]},
        "models": {"nq": {"family": "nequip"}, "al": {"family": "allegro"}},
        "methods": {
            "baseline": {"corr": None},
            "c1o": {"corr": {"features": {"nequip": "edge_1o"}}},
            "cenv": {"corr": {"features": {"allegro": "edge+env"}}},
        },
    }
    base["grid"].update(grid)
    return validate_config(base)


def test_product_and_method_families():
    runs = expand_grid(_config(ratio=[1.1, 2.0], temp_K=[1200, 1800]))
    # nequip: 2 layers x (baseline, c1o); allegro: 1 layer x (baseline, cenv); x 2 ratios x 2 temps
    assert len(runs) == (2 * 2 + 1 * 2) * 2 * 2
    assert list(runs.columns) == [*RUN_KEYS, *METHOD_COLUMNS, *SETTINGS_COLUMNS]
    assert set(runs.loc[runs.model == "al", "method"]) == {"baseline", "cenv"}
    assert set(runs.loc[runs.model == "nq", "method"]) == {"baseline", "c1o"}
    assert not runs.duplicated(list(RUN_KEYS)).any()
    assert len(training_runs(runs)) == 6


def test_exclude_scalars_and_lists():
    config = _config(
        exclude=[{"model": "nq", "layers": 2, "method": ["c1o"]}, {"ratio": 1.55, "temp_K": 1200}],
    )
    runs = expand_grid(config)
    assert not ((runs.model == "nq") & (runs.layers == 2) & (runs.method == "c1o")).any()
    assert ((runs.model == "nq") & (runs.layers == 4) & (runs.method == "c1o")).any()
    assert not ((runs.ratio == 1.55) & (runs.temp_K == 1200)).any()
    assert len(runs) == (2 + 2 + 2 - 1) * 2  # 5 trained models x ratios 1.1 and 2.0


def test_everything_excluded_is_an_error():
    with pytest.raises(ValueError, match="no runs"):
        expand_grid(_config(exclude=[{"method": ["baseline", "c1o", "cenv"]}]))


def test_paths_from_the_table():
    runs = with_paths(expand_grid(_config(ratio=[1.1])), "demo")
    row = runs[(runs.model == "nq") & (runs.layers == 4) & (runs.method == "c1o")].iloc[0]
    assert row["status"] == "results/demo/md/nq/L4/c1o/seed0/ratio1.10/c0/T1200K/v0/status.json"
    assert row["score"] == "results/demo/analysis/nq/L4/c1o/seed0/ratio1.10/c0/T1200K/v0/stability.json"
    assert row["metrics"] == "results/demo/train/nq/L4/c1o/seed0/metrics.json"
    assert paths.ratio_token(2) == "2.00"
    assert paths.log_path(paths.MD).startswith("results/{campaign}/logs/md/")
    bound = paths.bind("study")
    assert bound.log_path(bound.TRAIN) == "results/study/logs/train/{model}/L{layers}/{method}/seed{seed}"
    assert bound.bench_path(bound.MD_FILES["status"]).startswith("results/study/benchmarks/md/")
    assert bound.table_file("table2", "md") == "results/study/tables/table2.md"


def test_every_template_of_a_campaign_lies_under_its_root():
    for campaign in ("demo", "paper"):
        bound = paths.bind(campaign)
        templates = [v for k, v in vars(bound).items() if k.isupper() and isinstance(v, str) and "/" in v]
        # (file names inside a run directory, such as CHECKPOINT_FILES, are not templates)
        templates += [p for v in vars(bound).values() if isinstance(v, dict) for p in v.values() if "/" in p]
        assert len(templates) > 20
        for template in templates:
            assert template.startswith(f"results/{campaign}/") or template == f"results/{campaign}"
            assert "{campaign}" not in template


def test_a_campaign_name_must_be_a_directory_name():
    for bad in ("a/b", "", "../x", "{campaign}"):
        with pytest.raises(ValueError, match="campaign"):
            paths.bind(bad)


def test_paper_grid():
    runs = expand_grid(load_config(REPO / "config" / "paper.yaml"))
    trained = training_runs(runs)
    # Table 1: NequIP 2/4 and Allegro 1/3 baselines; Table 2/4/A1/A3 on the deep models.
    assert set(map(tuple, trained[trained.method == "baseline"][["model", "layers"]].values)) == {
        ("nequip", 2), ("nequip", 4), ("allegro", 1), ("allegro", 3), ("gemnet", 1), ("gemnet", 4),
    }
    extended = {"sam", "sam_rho_0p001", "sam_rho_0p05", "zbl", "decomposition", "corr_sam", "corr_zbl",
                "corr_decomposition", "active"}
    assert set(trained[trained.model == "nequip"].method) == {
        "baseline", "corr", "corr_mixed", "corr_0e", "corr_0e1o", "corr_node", *extended,
    }
    assert set(trained[trained.model == "allegro"].method) == {
        "baseline", "corr", "corr_fixed_edge", "corr_fixed_env", "corr_linear_env", *extended,
    }
    # ZBL and the decomposition need the energy-sum layout with a pair_potential: not GemNet-T
    assert set(trained[trained.model == "gemnet"].method) == {"baseline", "corr", "sam", "sam_rho_0p001",
                                                              "sam_rho_0p05", "corr_sam", "active"}
    # the extended study trains only the deep models
    assert set(trained[trained.method.isin(extended)].layers) == {3, 4}
    # + SAM's radius scan (0.001, 0.05) and the active round on the three deep models
    assert len(trained) == 16 + 6 + 6 + 2 + 3 * 2 + 3
    assert len(runs) == len(trained) * 3 * 3
    assert sorted(runs.temp_K.unique()) == [1200, 1800, 2400]


def test_each_method_is_resolved_once_in_the_table():
    """The run table says what every method means for its model's family (the paper's roles)."""
    runs = expand_grid(load_config(REPO / "config" / "paper.yaml"))
    trained = training_runs(runs).set_index(["model", "layers", "method"])

    def row(model, layers, method):
        return trained.loc[(model, layers, method)]

    base = row("nequip", 4, "baseline")
    assert (base.family, base["corr"], base.selection, base.corr_selection, base.role) == (
        "nequip", False, "", "edge_1o", "baseline")
    assert (base.paper_main, base.paper_table4, base.paper_tableA1) == ("baseline", "baseline", "")
    main = row("nequip", 4, "corr")  # cosine, edge_1o: the paper's corr, also Table 4's "edge 1o" row
    assert (main.role, main.paper_main, main.paper_table4, main.scheduler) == (
        "paper corr", "corr", "edge_1o", "cosine")
    zero = row("nequip", 4, "corr_0e")
    assert (zero.role, zero.paper_main, zero.paper_table4) == ("Table 4 ablation (edge_0e)", "", "edge_0e")
    fixed_env = row("allegro", 3, "corr_fixed_env")  # Table A1's edge+env row and Table A3's "fixed"
    assert (fixed_env.paper_tableA1, fixed_env.paper_tableA3, fixed_env.paper_main) == ("edge+env", "fixed", "")
    allegro_main = row("allegro", 3, "corr")
    assert (allegro_main.selection, allegro_main.paper_main, allegro_main.paper_tableA3) == (
        "edge+env", "corr", "cosine")
    # the preset's own name is carried, never a family default
    assert set(runs.method) == {"baseline", "corr", "corr_mixed", "corr_0e", "corr_0e1o", "corr_node",
                                "corr_fixed_edge", "corr_fixed_env", "corr_linear_env", "sam", "sam_rho_0p001",
                                "sam_rho_0p05", "zbl", "decomposition", "corr_sam", "corr_zbl", "corr_decomposition",
                                "active"}
    # a stabiliser other than corr alone never stands for a paper row, and is not a baseline
    sam, combo = row("allegro", 3, "sam"), row("nequip", 4, "corr_decomposition")
    assert (sam.baseline, sam["corr"], sam.sam, sam.stabilisers, sam.role, sam.paper_main) == (
        False, False, True, "sam", "stabiliser (sam)", "")
    assert (combo.baseline, combo["corr"], combo.decomposition, combo.stabilisers, combo.role) == (
        False, True, True, "corr+decomposition", "combination (corr+decomposition)")
    assert (combo.paper_main, combo.paper_table4, combo.selection) == ("", "", "edge_1o")
    assert row("nequip", 4, "corr_zbl").prior == "zbl" and base.prior == "none" and base.baseline


def test_cell_seeds_draw_vacancies_only_where_there_are_any():
    runs = expand_grid(_config(ratio=[1.1, 2.0], cell_seed=[3, 5], method=["baseline"]))
    per_ratio = runs.groupby("ratio")["cell_seed"].apply(lambda s: sorted(set(s))).to_dict()
    assert per_ratio == {1.1: [3, 5], 2.0: [3]}  # the stoichiometric cell has no vacancy to draw
    assert len(runs) == 3 * (2 + 1)  # 3 trained models (nq L2, nq L4, al L1) x 3 cells
    row = with_paths(runs, "demo").iloc[0]
    assert "/ratio1.10/c3/T1200K/" in row["status"]


def test_gemnet_runs_in_the_embedded_engine():
    from gnnff_stability.grid import md_route

    paper = load_config(REPO / "config" / "paper.yaml")
    assert paper["md"]["engine"] == "hpc"
    assert md_route("gemnet", paper["md"])["engine"] == "embedded"
    assert md_route("gemnet", paper["md"])["model_format"] == "package"
    assert md_route("nequip", paper["md"]) == paper["md"]
