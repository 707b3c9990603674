"""Tables and figures from a partial set of results (missing files are NaN, never failures)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from analysis_builders import HFO2, fluorite, snapshot, write_run

from gnnff_stability import paths
from gnnff_stability.report.figures import FIGURE_NAMES, fig_corr_vs_stability, make_figures
from gnnff_stability.analysis.rdf import compute_rdf_comparison
from gnnff_stability.analysis.score import score_run
from gnnff_stability.config import validate_config
from gnnff_stability.grid import METHOD_COLUMNS, RUN_KEYS, method_presets, method_role
from gnnff_stability.report.collect import bootstrap_mean, collect_results, run_files
from gnnff_stability.report.paper import paper_reference
from gnnff_stability.report.tables import TABLE_NAMES, build_tables
from gnnff_stability.settings import RDFSettings, StabilitySettings
from partial_settings import partial

METHODS = {
    "baseline": {"description": "", "corr": None},
    "corr": {"corr": {"features": {"nequip": "edge_1o", "allegro": "edge+env"},
                      "scheduler": "cosine"}},
    "corr_0e": {"corr": {"features": {"nequip": "edge_0e"}, "scheduler": "cosine"}},
    "corr_fixed_edge": {"corr": {"features": {"allegro": "edge"}, "scheduler": "fixed"}},
}
PRESETS = method_presets(validate_config({
    "grid": {"model": ["nequip"], "layers": {"nequip": [4]}, "method": ["baseline"]},
    "models": {"nequip": {"family": "nequip"}, "allegro": {"family": "allegro"}},
    "methods": METHODS,
}))


def _runs(tmp_path):
    rows = []
    for model, layers, methods, seeds in (("nequip", 4, ("baseline", "corr", "corr_0e"), (0, 1)),
                                          ("allegro", 3, ("baseline", "corr", "corr_fixed_edge"),
                                           (0,))):
        for method in methods:
            for seed in seeds:
                for ratio in (1.1, 2.0):
                    train = tmp_path / f"train/{model}/L{layers}/{method}/seed{seed}"
                    an = tmp_path / f"analysis/{model}/L{layers}/{method}/seed{seed}/ratio{ratio:.2f}"
                    rows.append(dict(model=model, layers=layers, method=method, seed=seed,
                                     ratio=ratio, cell_seed=0, temp_K=1200, vseed=0,
                                     **method_role(PRESETS[method], model),
                                     metrics=str(train / "metrics.json"),
                                     score=str(an / "stability.json"), sn=str(an / "sn.csv"),
                                     rdf=str(an / "rdf.csv"),
                                     rdf_metrics=str(an / "rdf_metrics.json"),
                                     dump=str(an / "run/dump.lammpstrj")))
    return pd.DataFrame(rows)


def _write_json(path, record):
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(record))


@pytest.fixture
def partial_results(tmp_path):
    """Synthetic results: a few real scored runs, many JSON-only ones, and some missing files."""
    runs = _runs(tmp_path)
    for rec in runs.to_dict("records"):
        if rec["method"] == "corr_fixed_edge":
            continue  # this training never finished: no metrics, no MD
        base = rec["method"] == "baseline"
        _write_json(rec["metrics"], {
            "emae_meV_per_atom": 2.0 + rec["seed"], "fmae_meV_per_A": 50.0 + 4 * rec["seed"]
            + (0 if base else 10), "corr_value": 0.3 if base else 0.1,
            "s_per_epoch": 10.0 if base else 10.5, "epochs": 5,
        })
        if rec["model"] == "allegro" and rec["method"] == "corr":
            continue  # MD of this method missing
        crash = base and rec["ratio"] == 1.1
        _write_json(rec["score"], {
            "s_index": 0.0 if crash else 0.8 + 0.01 * rec["seed"],
            "classification": "crash" if crash else "stable", "crash_step": 560 if crash else None,
            "crashed": crash, "atoms_lost": False, "temp_mean_K": 1250.0, "temp_max_K": 1400.0,
            "fmax_eV_per_A": 20.0, "rmin_HfHf_A": 2.8, "rmin_HfO_A": 1.7, "rmin_OO_A": 2.2,
            "n_snapshots": 10, "n_planned": 10, "ttf_legato_steps": 1000, "ttf_arena_fraction": 1.0,
        })
    # Two real runs through the scorer and the RDF, for the figures.
    pos, types, cell = fluorite()
    rng = np.random.default_rng(0)
    for k, crash in ((0, True), (2, False)):  # nequip baseline seed 0: 1.10 crashes, corr stable
        rec = runs.loc[k * 4 if crash else 4].to_dict()
        snaps = [snapshot(s, pos + rng.normal(0, 0.05, pos.shape), types, cell,
                          forces=rng.normal(0, 1, pos.shape)) for s in range(0, 501, 100)]
        from pathlib import Path

        files = write_run(Path(rec["dump"]).parent, snaps, {s: 1230.0 for s in range(0, 501, 100)},
                          classification="crash" if crash else "stable",
                          crash_step=560 if crash else None, steps_done=560 if crash else 1000)
        score_run(files["dump"], files["thermo"], files["status"], None,
                  partial(StabilitySettings, {"alpha": 1.0, "beta": 0.25, "ttf_band_K": 500.0}), rec["score"], rec["sn"], material=HFO2)
        compute_rdf_comparison(files["dump"], files["dump"], rec["rdf"], rec["rdf_metrics"],
                               partial(RDFSettings, {"r_max": 5.0, "n_bins": 50}), status=files["status"], material=HFO2)
    return runs


def test_collect_results_tolerates_missing_files(partial_results):
    res = collect_results(partial_results.drop(columns=["rdf_metrics"]), material=HFO2)
    assert len(res) == len(partial_results)
    assert res["ratio"].tolist()[:2] == ["1.10", "2.00"]
    fixed = res[res["method"] == "corr_fixed_edge"]
    assert not fixed["has_metrics"].any() and fixed["fmae_meV_per_A"].isna().all()
    assert res["has_score"].sum() == len(res) - 4  # fixed_edge (2) and allegro corr (2)
    assert res["crashed"].dtype == float and res["crashed"].max() == 1.0
    no_paths = collect_results(partial_results[[*RUN_KEYS, *METHOD_COLUMNS]], material=HFO2)
    assert no_paths["s_index"].isna().all()
    with pytest.raises(ValueError, match="resolved method column"):
        collect_results(partial_results[list(RUN_KEYS)], material=HFO2)


def test_build_tables_from_partial_results(partial_results, tmp_path):
    out = tmp_path / "tables"
    tables = build_tables(partial_results, paths.table_files(str(out)), material=HFO2)
    assert set(tables) == set(TABLE_NAMES)
    for name in TABLE_NAMES:
        assert (out / f"{name}.csv").exists() and (out / f"{name}.md").read_text().startswith("##")

    t2 = pd.read_csv(out / "table2.csv")
    nb = t2[(t2["model"] == "nequip") & (t2["method"] == "baseline")].iloc[0]
    assert nb["s_index_2.00_paper"] == pytest.approx(0.8490)
    assert nb["fmae_meV_per_A_paper"] == pytest.approx(51.2)
    assert nb["fmae_meV_per_A"] == pytest.approx(52.0) and nb["fmae_meV_per_A_n"] == 2
    assert nb["s_index_2.00_n"] == 2 and nb["s_index_2.00_lo"] <= nb["s_index_2.00"]
    nc = t2[(t2["model"] == "nequip") & (t2["method"] == "corr")].iloc[0]
    assert nc["paper_method"] == "corr" and nc["corr_value_paper"] == pytest.approx(0.0933)
    assert nc["fmae_meV_per_A_diff"] == pytest.approx(10.0)
    assert math.isnan(t2[t2["method"] == "corr_0e"].iloc[0]["corr_value_paper"])
    ac = t2[(t2["model"] == "allegro") & (t2["method"] == "corr")].iloc[0]
    assert math.isnan(ac["s_index_1.10"]) and ac["s_index_1.10_paper"] == pytest.approx(0.6465)
    assert math.isnan(ac["s_index_1.55"]) and ac["s_index_1.55_paper"] == pytest.approx(0.8138)
    md2 = (out / "table2.md").read_text()
    assert "—" in md2 and "0.8490" in md2 and "(+10.0)" in md2

    t1 = tables["table1"]
    assert t1.loc[t1["model"] == "nequip", "outcome_1.10"].iloc[0] == "crash 2/2 @s560"
    assert t1.loc[t1["model"] == "nequip", "outcome_1.10_paper"].iloc[0] == "crash@s384"

    t3 = tables["table3"]
    row = t3[(t3["model"] == "nequip") & (t3["method"] == "corr")].iloc[0]
    assert row["overhead_pct"] == pytest.approx(5.0) and row["overhead_pct_paper"] == 1.0

    t4 = tables["table4"]
    assert set(t4["method"]) == {"baseline", "corr", "corr_0e"}
    e0 = t4[t4["method"] == "corr_0e"].iloc[0]
    assert e0["selection"] == "edge_0e" and e0["fmae_meV_per_A_paper"] == pytest.approx(75.1)

    a1 = tables["tableA1"]
    fe = a1[a1["method"] == "corr_fixed_edge"].iloc[0]
    assert fe["paper_method"] == "edge" and fe["crashed_1.10_paper"] == 1.0
    assert fe["s_index_1.10_n"] == 0 and math.isnan(fe["fmae_meV_per_A"])
    a3 = tables["tableA3"]
    assert a3.loc[a3["method"] == "corr", "temp_mean_K_1.10_paper"].iloc[0] == 1795
    # both accuracies (the paper prints EMAE only)
    a3c = a3[a3["method"] == "corr"].iloc[0]
    assert a3c["fmae_meV_per_A"] == pytest.approx(60.0) and a3c["emae_meV_per_atom"] == pytest.approx(2.0)
    assert math.isnan(a3c["fmae_meV_per_A_paper"]) and a3c["emae_meV_per_atom_paper"] == 4.2
    assert "| FMAE |" in (out / "tableA3.md").read_text()

    a4 = tables["tableA4"]
    assert len(a4) == len(partial_results)
    real = a4[(a4["model"] == "nequip") & (a4["method"] == "corr") & (a4["seed"] == 0)
              & (a4["ratio"] == "1.10")].iloc[0]
    assert real["temp_mean_K"] == pytest.approx(1230.0) and real["s_index_paper"] == 0.8258
    # each run's model Corr value, beside the paper's (Table 2) for the same model and method
    assert real["corr_value"] == pytest.approx(0.1) and real["corr_value_paper"] == 0.0933
    base = a4[(a4["model"] == "allegro") & (a4["method"] == "baseline")].iloc[0]
    assert base["corr_value"] == pytest.approx(0.3) and base["corr_value_paper"] == 0.5179
    md4 = (out / "tableA4.md").read_text()
    assert "0.8258" in md4 and "| Corr value |" in md4 and "0.0933" in md4


def test_tables_with_no_results_at_all(tmp_path):
    runs = _runs(tmp_path).head(3)
    tables = build_tables(runs, paths.table_files(str(tmp_path / "t")), material=HFO2)
    assert tables["table2"]["s_index_2.00"].isna().all()
    assert "—" in (tmp_path / "t" / "table2.md").read_text()


def test_bootstrap_is_seeded():
    assert bootstrap_mean([1.0, 2.0, 3.0], seed=4) == bootstrap_mean([1.0, 2.0, 3.0], seed=4)
    mean, lo, hi, n = bootstrap_mean([1.0, np.nan, 3.0])
    assert (mean, n) == (2.0, 2) and 1.0 <= lo <= hi <= 3.0
    assert bootstrap_mean([])[3] == 0


def test_paper_reference_transcription():
    ref = paper_reference()
    assert list(ref.columns) == ["table", "model", "layers", "method", "ratio", "temp_K",
                                 "quantity", "value", "note"]
    assert set(ref["table"]) == set(TABLE_NAMES) - {"tableS1"}  # S1: metrics beyond the paper
    missing = ref[ref["value"] == ""]
    assert len(missing) > 0 and missing["note"].str.contains(r"'\?'").all()
    s = ref[(ref["table"] == "table2") & (ref["quantity"] == "s_index")]
    assert len(s) == 18
    # Table A1 edge+env at 1:1.55 reads "atoms lost Y(?)", but Table A3 reads N for the same run
    lost = ref[(ref["table"] == "tableA1") & (ref["method"] == "edge+env") & (ref["ratio"] == "1.55")
               & (ref["quantity"] == "atoms_lost")].iloc[0]
    assert lost["value"] == "" and "Table A3" in lost["note"]


def test_figures_from_partial_results(partial_results, tmp_path):
    # each figure goes to the file declared for it, whatever its name and folder
    declared = {f"{name}_{ext}": tmp_path / "fig" / f"{ext}s" / f"f{i}.{ext}"
                for i, name in enumerate(FIGURE_NAMES) for ext in ("png", "pdf")}
    written = make_figures(partial_results, declared, manifest=tmp_path / "fig" / "figures.done", material=HFO2)
    assert sorted(written) == sorted(declared.values())
    assert all(p.stat().st_size > 1000 for p in written)
    assert len((tmp_path / "fig" / "figures.done").read_text().split()) == 2 * len(FIGURE_NAMES)
    # With nothing at all the figures still exist and say so.
    empty = make_figures(_runs(tmp_path / "none").head(2), paths.figure_files(str(tmp_path / "fig0")), material=HFO2)
    assert len(empty) == 2 * len(FIGURE_NAMES)


def test_writers_refuse_an_undeclared_output(partial_results, tmp_path):
    tables = paths.table_files(str(tmp_path / "t"))
    del tables["table3_md"]
    with pytest.raises(ValueError, match="table3_md"):
        build_tables(partial_results, tables, material=HFO2)
    figures = paths.figure_files(str(tmp_path / "f"))
    del figures["fig7_rdf_pdf"]
    with pytest.raises(ValueError, match="fig7_rdf_pdf"):
        make_figures(partial_results, figures, material=HFO2)
    assert not (tmp_path / "t").exists() and not (tmp_path / "f").exists()  # nothing written first


def test_fig3_legend_lists_the_ratios_of_the_grid(partial_results):
    res = collect_results(partial_results, material=HFO2)
    grid_ratios = sorted(res["ratio"].dropna().unique(), key=float)
    fig = fig_corr_vs_stability(res, set(res.loc[res["baseline"], "method"]), 1200, axis="Hf:O")
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == [f"Hf:O 1:{float(r):g}" for r in grid_ratios] + ["baseline", "stabilised"]
    # a grid of other ratios: those, each in its own colour, and none of the paper's three
    other = res.assign(ratio=res["ratio"].map({"1.10": "1.30", "1.55": "1.80", "2.00": "2.00"}))
    fig = fig_corr_vs_stability(other, set(other.loc[other["baseline"], "method"]), 1200, axis="Hf:O")
    legend = fig.legends[0]
    labels = [t.get_text() for t in legend.get_texts()]
    expected = [f"Hf:O 1:{float(r):g}" for r in sorted(other["ratio"].dropna().unique(), key=float)]
    assert labels[:-2] == expected and "Hf:O 1:1.1" not in labels and "Hf:O 1:1.55" not in labels
    colours = [h.get_color() for h in legend.legend_handles[:-2]]
    assert len(set(colours)) == len(colours)


def test_run_files_keep_only_the_available_inputs(tmp_path):
    runs = _runs(tmp_path).drop(columns=["metrics", "score", "sn", "rdf", "rdf_metrics", "dump"])
    runs["layers"] = runs["layers"].astype(int)
    first = run_files(runs, [], "demo")
    assert first["score"].isna().all() and first["metrics"].isna().all()
    keep = first.iloc[0]
    score = paths.fill(paths.bind("demo").SCORE_FILES["score"], keep.to_dict())
    assert score.startswith("results/demo/analysis/")
    some = run_files(runs, [score], "demo")
    assert some["score"].notna().sum() == 1 and some.loc[0, "score"] == score
    # the same file of another campaign is not this campaign's result
    assert run_files(runs, [score], "study")["score"].isna().all()
