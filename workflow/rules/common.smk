# Validation, the run table, wildcard constraints and input functions. Every path comes from
# gnnff_stability.paths, bound to this campaign's results root; every run, and what its method means, from
# gnnff_stability.grid.expand_grid.

import os
import re

from gnnff_stability import paths as path_templates
from gnnff_stability.config import validate_config, with_campaign
from gnnff_stability.families import pair_style
from gnnff_stability.grid import (
    STOICHIOMETRIC_RATIO,
    TRAIN_KEYS,
    expand_grid,
    md_route,
    training_runs,
    with_paths,
)

# A config without `campaign` is named after its file: the last --configfile (or the Snakefile's default).
config = validate_config(with_campaign(config, workflow.configfiles[-1]) if workflow.configfiles else config)
# Every path template of gnnff_stability.paths with results/<campaign>/ filled in, under the module's names.
paths = path_templates.bind(config["campaign"])
RUN_TABLE = expand_grid(config)  # keys and resolved method columns, one row per MD run
RUNS = with_paths(RUN_TABLE, config["campaign"])
TRAININGS = training_runs(RUN_TABLE).set_index(list(TRAIN_KEYS), drop=False)
LOG = paths.log_path
BENCH = paths.bench_path
# The in-distribution cell of the stability metrics: stoichiometric HfO2, the first cell seed.
ID_CELL = paths.STRUCTURE_FILES["data"].format(
    ratio=paths.ratio_token(STOICHIOMETRIC_RATIO), cell=config["grid"]["cell_seed"][0]
)
# Active methods (methods.<name>.active) of the grid: their model comes from active.smk's rounds, not train_model.
ACTIVE_METHODS = sorted({m for m in config["grid"]["method"] if config["methods"][m].get("active") is not None})
TRAINED_METHODS = sorted(set(config["grid"]["method"]) - set(ACTIVE_METHODS))


def method_regex(names):
    """A wildcard constraint matching exactly these method names (none: a regex that matches nothing)."""
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) or "(?!)"


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
    round=r"\d+",


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
    """The run-table row of one training: keys plus the method resolved for the model's family
    (flags and settings of every stabiliser)."""
    key = (wildcards.model, int(wildcards.layers), wildcards.method, int(wildcards.seed))
    return TRAININGS.loc[key].to_dict()


def model_block(wildcards):
    return config["models"][wildcards.model]


def reference_inputs(wildcards):
    """The user's own data files (data.source: extxyz); the other sources have no input file."""
    if config["data"]["source"] != "extxyz":
        return []
    block = config["data"]["extxyz"]
    return [block[key] for key in ("file", "train", "valid", "test") if block[key]]


def prefit_input(wildcards):
    """The phase-1 body-term file of a decomposition method (nothing for other methods)."""
    if not training_row(wildcards)["decomposition"]:
        return []
    return paths.PREFIT.format(method=wildcards.method, seed=wildcards.seed)


# The run table's family of a model preset (a preset's name need not be its family's).
FAMILY_OF = dict(zip(RUN_TABLE["model"], RUN_TABLE["family"]))


def family_of(wildcards):
    return FAMILY_OF[wildcards.model]


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
    return f"pair_{pair_style(family_of(wildcards), config['md']['hpc']['pair_style'])}"


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
        key: report(
            path,
            caption=f"{REPORT_DIR}/tables.rst",
            category="Tables",
            labels={"table": key.rsplit("_", 1)[0], "format": key.rsplit("_", 1)[1]},
        )
        for key, path in paths.table_files(root=root).items()
    }


def figure_outputs(root=paths.FIGURES):
    """The figure files under ``root`` (PNG and PDF), each with its caption under workflow/report/."""
    return {
        key: report(
            path,
            caption=f"{REPORT_DIR}/{key.rsplit('_', 1)[0]}.rst",
            category="Figures",
            labels={"figure": key.rsplit("_", 1)[0], "format": key.rsplit("_", 1)[1]},
        )
        for key, path in paths.figure_files(root=root).items()
    }


def all_targets():
    return [*table_outputs().values(), *figure_outputs().values()]
