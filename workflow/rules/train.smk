rule train_model:
    input:
        train=paths.DATA_FILES["train"],
        valid=paths.DATA_FILES["valid"],
        test=paths.DATA_FILES["test"],
    output:
        **paths.TRAIN_FILES,
    params:
        run=training_row,
        model=model_block,
        method=method_block,
        training=config["training"],
        run_dir=train_dir,
    log:
        LOG(f"{paths.TRAIN}/train_model.log"),
    benchmark:
        BENCH(f"{paths.TRAIN}/train_model.tsv")
    threads: 2
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/train_model.py"


rule compile_model:
    input:
        model=paths.MODEL_PACKAGE,
    output:
        compiled=paths.COMPILED_MODEL,
    params:
        target=compile_target,
        device=config["md"]["device"],
    wildcard_constraints:
        engine="embedded|hpc",
    log:
        LOG(f"{paths.TRAIN}/compile_model.{{engine}}.log"),
    benchmark:
        BENCH(f"{paths.TRAIN}/compile_model.{{engine}}.tsv")
    threads: 2
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/compile_model.py"
