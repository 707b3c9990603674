# Validation, the run table, wildcard constraints and input functions. Every path comes from
# gnnff_stability.paths; every run, and what its method means, from gnnff_stability.grid.expand_grid.

import os

from gnnff_stability import paths
from gnnff_stability.config import validate_config
from gnnff_stability.grid import (
    STOICHIOMETRIC_RATIO,
    TRAIN_KEYS,
    expand_grid,
    md_route,
    training_runs,
    with_paths,
)
from gnnff_stability.report.figures import FIGURE_NAMES

config = validate_config(config)
RUN_TABLE = expand_grid(config)  # keys and resolved method columns, one row per MD run
RUNS = with_paths(RUN_TABLE)
TRAININGS = training_runs(RUN_TABLE).set_index(list(TRAIN_KEYS), drop=False)
LOG = paths.log_path
BENCH = paths.bench_path
# The in-distribution cell of the stability metrics: stoichiometric HfO2, the first cell seed.
ID_CELL = paths.STRUCTURE_FILES["data"].format(
    ratio=paths.ratio_token(STOICHIOMETRIC_RATIO), cell=config["grid"]["cell_seed"][0]
)
REPORT_DIR = f"{workflow.basedir}/workflow/report"  # captions, absolute: report() is called from several files


wildcard_constraints:
    model="|".join(sorted(config["models"])),
    method="|".join(sorted(config["methods"], key=len, reverse=True)).replace("+", r"\+"),
    layers=r"\d+",
    seed=r"\d+",
    ratio=r"\d\.\d\d",
    cell=r"\d+",
    temp=r"\d+",
    vseed=r"\d+",


# --- parameters read off the wildcards -------------------------------------------------------------


def ratio_of(wildcards):
    return float(wildcards.ratio)


def cell_seed_of(wildcards):
    return int(wildcards.cell)


def temp_of(wildcards):
    return int(wildcards.temp)


def vseed_of(wildcards):
    return int(wildcards.vseed)


def training_row(wildcards):
    """The run-table row of one training: keys plus the method resolved for the model's family."""
    key = (wildcards.model, int(wildcards.layers), wildcards.method, int(wildcards.seed))
    return TRAININGS.loc[key].to_dict()


def model_block(wildcards):
    return config["models"][wildcards.model]


def method_block(wildcards):
    return config["methods"][wildcards.method]


def reference_inputs(wildcards):
    """The user's own data files (data.source: extxyz); the other sources have no input file."""
    if config["data"]["source"] != "extxyz":
        return []
    block = config["data"]["extxyz"]
    return [block[key] for key in ("file", "train", "valid", "test") if block[key]]


def prefit_input(wildcards):
    """The phase-1 body-term file of a decomposition method (nothing for other methods)."""
    if config["methods"][wildcards.method]["decomposition"] is None:
        return []
    return paths.PREFIT.format(method=wildcards.method, seed=wildcards.seed)


def family_of(wildcards):
    return config["models"][wildcards.model]["family"]


def train_dir(wildcards):
    return paths.TRAIN_RUN_DIR.format(**wildcards)


# --- MD inputs -------------------------------------------------------------------------------------


def md_block(wildcards):
    """The ``md`` block of this run's family (GemNet-T always runs in the embedded engine)."""
    return md_route(family_of(wildcards), config["md"])


def deployed_model(wildcards):
    """The model file the MD engine loads: the nequip package, or its compiled form."""
    md = md_block(wildcards)
    if md["engine"] == "hpc" or md["model_format"] == "compiled":
        return paths.COMPILED_MODEL.format(engine=md["engine"], **wildcards)
    return paths.MODEL_PACKAGE.format(**wildcards)


def compile_target(wildcards):
    if wildcards.engine == "embedded":
        return "ase"
    style = config["md"]["hpc"]["pair_style"]
    return f"pair_{family_of(wildcards) if style == 'auto' else style}"


# --- aggregation ------------------------------------------------------------------------------------


def run_records():
    """The run table as records (keys and resolved method columns; paths come from paths.py)."""
    return RUN_TABLE.to_dict("records")


def result_files(existing_only=False):
    """Every per-run result the tables and figures read (optionally only those that exist now)."""
    files = {
        "metrics": sorted(set(RUNS["metrics"])),
        "epochs": sorted(set(RUNS["epochs"])),
        "score": list(RUNS["score"]),
        "sn": list(RUNS["sn"]),
        "dump": list(RUNS["dump"]),
    }
    if config["refmd"]["enabled"]:
        files["rdf"] = list(RUNS["rdf"])
        files["rdf_metrics"] = list(RUNS["rdf_metrics"])
    for metric in ("nve", "ramp"):
        if config["metrics"][metric]["enabled"]:
            files[metric] = sorted(set(RUNS[metric]))
    files["pair"] = sorted(set(RUNS["pair"]))
    if config["data"]["source"] == "comb":  # the reference potential's own curve
        files["pair_reference"] = [paths.PAIR_REFERENCE]
    if existing_only:
        files = {name: [p for p in group if os.path.exists(p)] for name, group in files.items()}
    return files


def table_outputs(root=paths.TABLES):
    """The table files under ``root``, marked for `snakemake --report` (CSV shown as a table)."""
    return {
        f"{name}_{ext}": report(
            paths.table_file(name, ext, root),
            caption=f"{REPORT_DIR}/tables.rst",
            category="Tables",
            labels={"table": name, "format": ext},
        )
        for name in paths.TABLE_NAMES
        for ext in paths.TABLE_FORMATS
    }


def figure_outputs(root=paths.FIGURES):
    """The figure files under ``root`` (PNG and PDF), each with its caption under workflow/report/."""
    return {
        f"{name}_{ext}": report(
            paths.figure_file(name, ext, root),
            caption=f"{REPORT_DIR}/{name}.rst",
            category="Figures",
            labels={"figure": name, "format": ext},
        )
        for name in FIGURE_NAMES
        for ext in paths.FIGURE_FORMATS
    }


def all_targets():
    return [*table_outputs().values(), *figure_outputs().values()]
