# Validation, the run table, wildcard constraints and input functions. Every path comes from
# gnnff_stability.paths, bound to this campaign's results root; every run, and what its method means, from
# gnnff_stability.grid.expand_grid.

import json
import os
import re
from pathlib import Path

import pandas as pd

from gnnff_stability import paths as path_templates
from gnnff_stability.config import validate_config, with_campaign
from gnnff_stability.families import pair_style
from gnnff_stability.grid import (
    TRAIN_KEYS,
    expand_grid,
    harvest_runs,
    md_route,
    stoichiometric_ratio_of,
    study_arms,
    training_runs,
    with_paths,
)

# A config without `campaign` is named after its file: the last --configfile (or the Snakefile's default).
config = validate_config(with_campaign(config, workflow.configfiles[-1]) if workflow.configfiles else config)
# Every path template of gnnff_stability.paths with results/<campaign>/ filled in, under the module's names.
paths = path_templates.bind(config["campaign"])
RUN_TABLE = expand_grid(config)  # keys and resolved method columns, one row per MD run
RUNS = with_paths(RUN_TABLE, config["campaign"])
STUDY_ARMS = study_arms(RUN_TABLE)  # (baseline, [methods]) or None
TRAININGS = training_runs(RUN_TABLE).set_index(list(TRAIN_KEYS), drop=False)
LOG = paths.log_path
BENCH = paths.bench_path
# The in-distribution cell of the stability metrics: the undepleted crystal, the first cell seed.
ID_CELL = paths.STRUCTURE_FILES["data"].format(
    ratio=paths.ratio_token(stoichiometric_ratio_of(config)), cell=config["grid"]["cell_seed"][0]
)
MATERIAL = config["material"]  # the chemistry every rule that reads species gets as a param
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
    if config["data"]["source"] in ("comb", "reference"):  # the reference potential's own curve
        files["pair_reference"] = [paths.PAIR_REFERENCE]
    if existing_only:
        files = {name: [p for p in group if os.path.exists(p)] for name, group in files.items()}
    return files


def overhead_benchmark_input():
    """The benchmark CSV Table 3 prints per-step overheads from (figures.overhead_benchmark), if any."""
    files = list(config["figures"]["overhead_benchmark"])
    return {"overhead_benchmark": files} if files else {}


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


def study_targets():
    """The study report's files, when the grid has a baseline and a method to compare with it."""
    return list(paths.STUDY_FILES.values()) if STUDY_ARMS is not None else []


def all_targets():
    return [*table_outputs().values(), *figure_outputs().values(), *study_targets()]


# --- active learning (active.smk) -------------------------------------------------------------------

HARVEST_RUNS = harvest_runs(config, RUN_TABLE)
ACTIVE_RE = method_regex(ACTIVE_METHODS)
_TRAIN_WILDCARDS = ("model", "layers", "method", "seed")


def active_block(wildcards):
    return config["methods"][wildcards.method]["active"]


def _train_values(wildcards, **changes):
    return {**{k: getattr(wildcards, k) for k in _TRAIN_WILDCARDS}, **changes}


def round_start(wildcards, r=None):
    """``model``, ``metrics``, ``epochs`` and ``checkpoint`` of the model round ``r`` starts from: the base
    method's trained model for round 0, the previous round's retrained model after it."""
    r = int(wildcards.round) if r is None else int(r)
    ckpt_file = path_templates.CHECKPOINT_FILES[config["training"]["checkpoint"]]
    if r == 0:
        values = _train_values(wildcards, method=active_block(wildcards)["base"])
        files = {k: paths.TRAIN_FILES[k].format(**values) for k in ("model", "metrics", "epochs")}
        return {**files, "checkpoint": f"{paths.TRAIN_RUN_DIR.format(**values)}/{ckpt_file}"}
    values = _train_values(wildcards, round=r - 1)
    files = {k: paths.ACTIVE_FILES[k].format(**values) for k in ("model", "metrics", "epochs")}
    return {**files, "checkpoint": f"{paths.ACTIVE_FILES['run_dir'].format(**values)}/{ckpt_file}"}


def _harvest_rows(wildcards):
    keys = {"model": wildcards.model, "layers": int(wildcards.layers), "method": wildcards.method,
            "seed": int(wildcards.seed), "round": int(wildcards.round)}
    mask = (HARVEST_RUNS[list(keys)] == pd.Series(keys)).all(axis=1)
    return HARVEST_RUNS[mask].to_dict("records")


def harvest_files(kind):
    return lambda wildcards: [path_templates.fill(paths.ACTIVE_MD_FILES[kind], row) for row in _harvest_rows(wildcards)]


def harvest_run_list(wildcards):
    """The round's harvest runs as select_round reads them: name (the run directory), dump, status."""
    return [{"run": str(Path(path_templates.fill(paths.ACTIVE_MD_FILES["status"], row)).parent),
             "dump": path_templates.fill(paths.ACTIVE_MD_FILES["dump"], row),
             "status": path_templates.fill(paths.ACTIVE_MD_FILES["status"], row)}
            for row in _harvest_rows(wildcards)]


def harvest_start_cells(wildcards):
    """Each harvest run's start cell, by run directory (COMB labels are relative to it)."""
    return {str(Path(path_templates.fill(paths.ACTIVE_MD_FILES["status"], row)).parent):
            path_templates.fill(paths.STRUCTURE_FILES["data"], row) for row in _harvest_rows(wildcards)}


def committee_models(wildcards):
    committee = active_block(wildcards)["harvest"]["committee"]
    if committee is None:
        return []
    base = active_block(wildcards)["base"]
    return [paths.MODEL_PACKAGE.format(**_train_values(wildcards, method=base, seed=s)) for s in committee["seeds"]]


def harvest_md_block(wildcards):
    # harvest runs drive the round's package in the embedded engine, whatever md.engine: they yield frames, not scores
    return {**md_block(wildcards), "engine": "embedded", "model_format": "package"}


def previous_split(wildcards):
    r = int(wildcards.round)
    if r == 0:
        return paths.DATA_FILES["train"]
    return paths.ACTIVE_FILES["train"].format(**_train_values(wildcards, round=r - 1))


def retrain_prefit(wildcards):
    if active_block(wildcards)["retrain"]["mode"] == "finetune":
        return []
    return prefit_input(wildcards)


def active_result(wildcards):
    """The rounds done and the model the active method ends with; a round that selected no frame stops the
    loop (its selection.json says why)."""
    done = []
    for r in range(int(active_block(wildcards)["rounds"])):
        selection = checkpoints.select_frames.get(**_train_values(wildcards, round=r)).output.selection
        if json.loads(Path(selection).read_text())["n_selected"] == 0:
            start = round_start(wildcards, r)
            return {**{k: start[k] for k in ("model", "metrics", "epochs")}, "rounds": done, "stop": [selection]}
        done.append(paths.ACTIVE_FILES["metrics"].format(**_train_values(wildcards, round=r)))
    start = round_start(wildcards, len(done))
    return {**{k: start[k] for k in ("model", "metrics", "epochs")}, "rounds": done, "stop": []}
