# Active learning from failed runs (methods.<name>.active): one round is harvest MD -> select_frames (a
# checkpoint: the frame count is known only after the MD) -> label_harvest -> merge_training -> retrain_model;
# finish_active packages the last round's model as the active method's, or round 0's model when a round
# harvested nothing, which ends the loop. Harvest runs use active.harvest's cells and velocity seeds, never the
# grid's (gnnff_stability.grid.harvest_runs); they are not in the run table, so no stability table reads them.

import json

import pandas as pd
from pathlib import Path

from gnnff_stability.grid import harvest_runs
from gnnff_stability.train.run import CHECKPOINT_FILES

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
    ckpt_file = CHECKPOINT_FILES[config["training"]["checkpoint"]]
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


rule harvest_md:
    input:
        model=lambda wildcards: round_start(wildcards)["model"],
        cell=paths.STRUCTURE_FILES["data"],
    output:
        **paths.ACTIVE_MD_FILES,
    params:
        temp_K=temp_of,
        seed=vseed_of,
        family=family_of,
        md=harvest_md_block,
    wildcard_constraints:
        method=ACTIVE_RE,
    log:
        LOG(f"{paths.ACTIVE_MD}/harvest_md.log"),
    benchmark:
        BENCH(f"{paths.ACTIVE_MD}/harvest_md.tsv")
    threads: 1
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/run_md.py"


checkpoint select_frames:
    input:
        dumps=harvest_files("dump"),
        status=harvest_files("status"),
        committee=committee_models,
    output:
        selected=paths.ACTIVE_FILES["selected"],
        selection=paths.ACTIVE_FILES["selection"],
    params:
        runs=harvest_run_list,
        harvest=lambda wildcards: active_block(wildcards)["harvest"],
        device=config["md"]["device"],
    wildcard_constraints:
        method=ACTIVE_RE,
    log:
        LOG(f"{paths.ACTIVE}/select_frames.log"),
    threads: 1
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/select_frames.py"


rule label_harvest:
    input:
        selected=paths.ACTIVE_FILES["selected"],
        cells=lambda wildcards: sorted(set(harvest_start_cells(wildcards).values())),
    output:
        harvest=paths.ACTIVE_FILES["harvest"],
        label=paths.ACTIVE_FILES["label"],
    params:
        label=lambda wildcards: active_block(wildcards)["label"],
        comb=config["data"]["comb"],
        start_cells=harvest_start_cells,
    wildcard_constraints:
        method=ACTIVE_RE,
    log:
        LOG(f"{paths.ACTIVE}/label_harvest.log"),
    benchmark:
        BENCH(f"{paths.ACTIVE}/label_harvest.tsv")
    threads: 1
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/label_harvest.py"


rule merge_training:
    input:
        train=previous_split,
        harvest=paths.ACTIVE_FILES["harvest"],
    output:
        train=paths.ACTIVE_FILES["train"],
    wildcard_constraints:
        method=ACTIVE_RE,
    log:
        LOG(f"{paths.ACTIVE}/merge_training.log"),
    threads: 1
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/merge_training.py"


rule retrain_model:
    priority: 10
    input:
        train=paths.ACTIVE_FILES["train"],
        valid=paths.DATA_FILES["valid"],
        test=paths.DATA_FILES["test"],
        prefit=retrain_prefit,
        selection=paths.ACTIVE_FILES["selection"],
        label=paths.ACTIVE_FILES["label"],
        start_model=lambda wildcards: round_start(wildcards)["model"],
    output:
        model=paths.ACTIVE_FILES["model"],
        metrics=paths.ACTIVE_FILES["metrics"],
        epochs=paths.ACTIVE_FILES["epochs"],
    params:
        run=training_row,
        model=model_block,
        training=config["training"],
        retrain=lambda wildcards: active_block(wildcards)["retrain"],
        run_dir=lambda wildcards: paths.ACTIVE_FILES["run_dir"].format(**wildcards),
        init_checkpoint=lambda wildcards: round_start(wildcards)["checkpoint"],
    wildcard_constraints:
        method=ACTIVE_RE,
    log:
        LOG(f"{paths.ACTIVE}/retrain_model.log"),
    benchmark:
        BENCH(f"{paths.ACTIVE}/retrain_model.tsv")
    threads: 2
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/retrain_model.py"


rule finish_active:
    input:
        unpack(active_result),
    output:
        model=paths.TRAIN_FILES["model"],
        metrics=paths.TRAIN_FILES["metrics"],
        epochs=paths.TRAIN_FILES["epochs"],
    params:
        run=training_row,
    wildcard_constraints:
        method=ACTIVE_RE,
    log:
        LOG(f"{paths.TRAIN}/finish_active.log"),
    threads: 1
    script:
        "../../scripts/finish_active.py"
