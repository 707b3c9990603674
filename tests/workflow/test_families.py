"""The family registry: the schema agrees with it, and a model preset named unlike its family flows
through the run table, the trainer's row, the tables and the figure labels by its family."""

from __future__ import annotations

import copy
import re

import numpy as np
import pandas as pd
import pytest

from gnnff_stability.config import load_schema, validate_config
from gnnff_stability.families import FAMILIES, display_name, model_label, pair_style
from gnnff_stability.grid import expand_grid, training_runs, with_paths
from gnnff_stability.report.outcomes import outcome_grid
from gnnff_stability.report.tables import build_tables
from gnnff_stability.settings import MaterialSettings
from gnnff_stability.train.hydra import method_overrides

# --- the schema against the registry ------------------------------------------------------------------


def _models_block() -> dict:
    return load_schema()["properties"]["models"]["additionalProperties"]


def _corr_block() -> dict:
    method = load_schema()["properties"]["methods"]["additionalProperties"]
    return method["properties"]["corr"]["oneOf"][1]


def test_the_schema_family_enum_is_the_registry():
    assert _models_block()["properties"]["family"]["enum"] == list(FAMILIES)


def test_the_schema_feature_selections_are_the_registry_selections():
    features = _corr_block()["properties"]["features"]["properties"]
    assert list(features) == list(FAMILIES)
    for name, record in FAMILIES.items():
        assert features[name]["enum"] == list(record.selections), name


def test_the_schema_model_keys_are_the_union_of_the_families_keys():
    keys = set(_models_block()["properties"]) - {"family", "overrides"}
    assert keys == set().union(*(f.model_keys for f in FAMILIES.values()))
    for record in FAMILIES.values():
        assert "r_max" in record.model_keys  # every family has a cutoff


def test_the_schema_pair_styles_are_the_registry_pair_styles():
    md = load_schema()["properties"]["md"]["properties"]
    enum = md["hpc"]["properties"]["pair_style"]["enum"]
    assert enum == ["auto", *(f.pair_style for f in FAMILIES.values() if f.pair_style)]


def test_every_template_of_the_registry_exists_and_names_its_species_and_family():
    from gnnff_stability.train.hydra import template_dir

    with template_dir() as templates:
        for record in FAMILIES.values():
            text = (templates / record.template).read_text()
            assert re.search(r"^family: \?\?\?.*nequip / allegro / gemnet", text, re.MULTILINE)
            # the species come from the record, not from the template
            assert re.search(r"^model_type_names: \?\?\?", text, re.MULTILINE)
            assert "[Hf, O]" not in text


def test_pair_style_lookup():
    assert pair_style("nequip") == "nequip" and pair_style("allegro") == "allegro"
    assert pair_style("allegro", "nequip") == "nequip"  # an explicit md.hpc.pair_style wins
    with pytest.raises(ValueError, match=r"got family 'gemnet'.*|nequip, allegro.*'gemnet'"):
        pair_style("gemnet")


def test_labels_are_looked_up_by_family():
    assert display_name("gemnet") == "GemNet-T"
    assert model_label("nequip", "nequip") == "NequIP"
    assert model_label("big_nequip", "nequip") == "NequIP (big_nequip)"
    with pytest.raises(ValueError, match="unknown model family 'schnet'; known: nequip, allegro, gemnet"):
        display_name("schnet")


# --- a model preset named unlike its family ---------------------------------------------------------------

_CAMPAIGN = {
    "grid": {"model": ["big_nequip", "small_allegro"], "layers": {"big_nequip": [4], "small_allegro": [1]},
             "method": ["baseline", "c1o", "cenv", "zbl"], "ratio": [1.1, 2.0]},
    "models": {"big_nequip": {"family": "nequip", "num_features": 64},
               "small_allegro": {"family": "allegro"}},
    "methods": {
        "baseline": {"corr": None},
        "c1o": {"corr": {"features": {"nequip": "edge_1o"}, "c_max": 0.25, "t_cycle": 40}},
        "cenv": {"corr": {"features": {"allegro": "edge+env"}, "scheduler": "fixed"}},
        "zbl": {"prior": "zbl"},
    },
}


@pytest.fixture
def runs() -> pd.DataFrame:
    return expand_grid(validate_config(copy.deepcopy(_CAMPAIGN)))


def test_a_model_named_unlike_its_family_is_expanded_by_its_family(runs):
    trained = training_runs(runs).set_index(["model", "method"])
    assert set(trained.loc["big_nequip"].family) == {"nequip"}
    # the methods follow the family, not the preset's name
    assert set(trained.loc["big_nequip"].index) == {"baseline", "c1o", "zbl"}
    assert set(trained.loc["small_allegro"].index) == {"baseline", "cenv", "zbl"}
    base = trained.loc[("big_nequip", "baseline")]
    assert base.corr_selection == "edge_1o"  # NequIP's baseline Corr selection, as in the paper
    main = trained.loc[("big_nequip", "c1o")]
    assert (main.role, main.paper_main, main.paper_table4) == ("paper corr", "corr", "edge_1o")


def test_the_row_carries_the_resolved_method(runs):
    trained = training_runs(runs).set_index(["model", "method"])
    # the config's values, the family's selection, and the schema's defaults for the rest
    assert trained.loc[("big_nequip", "c1o")].corr_settings == {
        "selection": "edge_1o", "scheduler": "cosine", "c_min": 0.0, "c_max": 0.25, "t_cycle": 40,
        "sample_edges": 1024,
    }
    assert trained.loc[("small_allegro", "cenv")].corr_settings["selection"] == "edge+env"
    assert trained.loc[("small_allegro", "cenv")].corr_settings["scheduler"] == "fixed"
    for method in ("baseline", "zbl"):
        row = trained.loc[("big_nequip", method)]
        assert row.corr_settings is None and row.sam_settings is None and row.decomposition_settings is None
    # the trainer's stabiliser overrides come from the row alone
    zbl = trained.loc[("big_nequip", "zbl")].to_dict() | {"model": "big_nequip", "method": "zbl"}
    species = tuple(validate_config(copy.deepcopy(_CAMPAIGN))["material"]["species"])
    (override,) = method_overrides(zbl, species)
    assert override.startswith("++training_module.model.pair_potential=")
    assert "chemical_species:['Hf','O']" in override
    assert method_overrides(trained.loc[("big_nequip", "c1o")].to_dict() | {"method": "c1o"}, species) == []


def _write_results(runs: pd.DataFrame, tmp_path) -> pd.DataFrame:
    """Metrics and stability files for every run of a hand-made result set: FMAE 40 meV/Å for
    big_nequip, 100 for small_allegro; the 1.10 cell crashes, the 2.00 cell is stable."""
    import json

    table = with_paths(runs, "test")
    for column in ("metrics", "score", "epochs", "status", "thermo", "dump", "sn", "rdf", "rdf_metrics"):
        table[column] = [str(tmp_path / p) for p in table[column]]
    for rec in table.to_dict("records"):
        fmae = 40.0 if rec["model"] == "big_nequip" else 100.0
        metrics = {"emae_meV_per_atom": 1.0, "fmae_meV_per_A": fmae, "corr_value": 0.5, "s_per_epoch": 2.0,
                   "epochs": 10, "train_wall_s": 20.0}
        stable = rec["ratio"] == 2.0
        score = {"s_index": 0.9 if stable else 0.0, "classification": "stable" if stable else "crash",
                 "crash_step": None if stable else 100, "crashed": not stable, "atoms_lost": False,
                 "temp_mean_K": 1200.0}
        for column, content in (("metrics", metrics), ("score", score)):
            path = tmp_path / rec[column]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(content))
    return table


def test_tables_and_figure_labels_name_the_family(runs, tmp_path):
    table = _write_results(runs, tmp_path)
    from gnnff_stability import paths

    material = MaterialSettings.from_config(validate_config(copy.deepcopy(_CAMPAIGN))["material"])
    tables = build_tables(table, paths.table_files(str(tmp_path / "tables")), material=material)
    # Table 1: big_nequip L4's baseline sits beside the paper's NequIP L4 baseline (FMAE 51.2 meV/Å)
    t1 = tables["table1"].set_index("model")
    assert t1.loc["big_nequip", "family"] == "nequip"
    assert t1.loc["big_nequip", "fmae_meV_per_A"] == pytest.approx(40.0)
    assert t1.loc["big_nequip", "fmae_meV_per_A_paper"] == pytest.approx(51.2)
    assert t1.loc["small_allegro", "fmae_meV_per_A_paper"] == pytest.approx(259.0)  # Allegro L1
    # Table 4 (the NequIP selections) and Table A1 (the Allegro ones) find the presets by family
    assert set(tables["table4"]["model"]) == {"big_nequip"}
    assert set(tables["tableA1"]["model"]) == {"small_allegro"}
    markdown = (tmp_path / "tables" / "table1.md").read_text()
    assert "| NequIP (big_nequip) | 4 | baseline |" in markdown
    assert "| Allegro (small_allegro) | 1 | baseline |" in markdown
    assert "big_nequip |" not in markdown.replace("(big_nequip) |", "")
    # the outcome figure's row labels
    from gnnff_stability.report.collect import collect_results

    rows, _, colours, labels = outcome_grid(collect_results(table, material=material))
    assert rows == ["NequIP (big_nequip) L4 baseline", "NequIP (big_nequip) L4 c1o",
                    "NequIP (big_nequip) L4 zbl", "Allegro (small_allegro) L1 baseline",
                    "Allegro (small_allegro) L1 cenv", "Allegro (small_allegro) L1 zbl"]
    assert [row[0] for row in labels] == ["crash"] * 6 and [row[1] for row in labels] == ["stable"] * 6
    assert np.asarray(colours).shape == (6, 2, 3)


def test_a_model_named_unlike_its_family_plans_through_snakemake(workdir):
    """The dry run of the tiny campaign with its NequIP preset renamed big_nequip, a GemNet-T preset
    named small (embedded only) and the HPC engine: compile targets and MD routes follow the family."""
    import yaml
    from workflow_helpers import job_counts, run_snakemake

    config = yaml.safe_load((workdir / "config" / "test.yaml").read_text())
    config["models"] = {"big_nequip": config["models"]["nequip"], "small": {"family": "gemnet", "r_max": 4.0}}
    config["grid"].update(model=["big_nequip", "small"], layers={"big_nequip": [2], "small": [1]},
                          method=["baseline", "zbl"], exclude=[])
    config["md"] = {"engine": "hpc", "steps": 200}
    config["refmd"] = {"enabled": False}
    (workdir / "config" / "renamed.yaml").write_text(yaml.safe_dump(config))
    proc = run_snakemake("-n", "--configfile", "config/renamed.yaml", cwd=workdir)
    counts = job_counts(proc.stdout)
    # big_nequip: baseline and zbl; small (GemNet-T): baseline only (no prior on GemNet-T)
    assert counts["train_model"] == 3
    # the HPC engine runs NequIP, compiled for pair_nequip; GemNet-T has no pair style: embedded, no compile
    assert counts["compile_model"] == 2
    assert counts["run_md"] == 3 * 2
    assert "results/md/big_nequip/L2/zbl/" in proc.stdout or "big_nequip/L2/zbl" in proc.stdout
    assert "small/L1/zbl" not in proc.stdout
