# Active learning from failed runs (methods.<name>.active): one round is harvest MD -> select_frames (a
# checkpoint: the frame count is known only after the MD) -> label_harvest -> merge_training -> retrain_model;
# finish_active packages the last round's model as the active method's, or round 0's model when a round
# harvested nothing, which ends the loop. Harvest runs use active.harvest's cells and velocity seeds, never the
# grid's (gnnff_stability.grid.harvest_runs); they are not in the run table, so no stability table reads them.

# Their input functions are in common.smk.


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
        material=MATERIAL,
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
        material=MATERIAL,
        device="cpu",  # a few packaged models on at most max_frames frames: the submitting node's CPU
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
        material=MATERIAL,
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
        material=MATERIAL,
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
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/finish_active.py"
